"""The rule for the expiry a new credential is asked for with (issue #19, item 4).

A requested expiry lies in the future and no further out than the credential's rotation policy
allows: its own maximum age when the request names one, else the default for its kind
(settings.STEWARD_THRESHOLDS). A credential that outlives its policy would be overdue the day it
is provisioned. Registering an existing credential records the expiry it really has, so this rule
applies to requests for new ones (provisioning), not to the inventory record.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

DEFAULT_MAX_AGE_DAYS = 90


def credential_policy_max_age_days(*, kind: str, rotation_max_age_days: int | None) -> int:
    """The credential's own rotation policy, else its kind's default."""
    if rotation_max_age_days:
        return int(rotation_max_age_days)
    return int(settings.STEWARD_THRESHOLDS["rotation_max_age_days"].get(kind, DEFAULT_MAX_AGE_DAYS))


def credential_requested_expiry_check(*, kind: str, expires_at: dt.datetime | None,
                                      rotation_max_age_days: int | None, now: dt.datetime | None = None) -> None:
    """ValidationError on expires_at when it is past or beyond the policy's maximum age."""
    if expires_at is None:
        return
    now = now or timezone.now()
    if expires_at <= now:
        raise ValidationError({"expires_at": f"The expiry {timezone.localtime(expires_at):%Y-%m-%d} is in the past: "
                                             "a new credential expires in the future."})
    max_days = credential_policy_max_age_days(kind=kind, rotation_max_age_days=rotation_max_age_days)
    latest = now + dt.timedelta(days=max_days)
    if expires_at > latest:
        raise ValidationError({"expires_at": f"At most {max_days} days from today (the rotation policy's maximum "
                                             f"age): on or before {timezone.localtime(latest):%Y-%m-%d}."})
