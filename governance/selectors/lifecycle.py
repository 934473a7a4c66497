"""Reads of the lifecycle capability, and the observed-truth annotations the checks should use.

with_observed_rotation() is the one place that says when a credential was last rotated: the
store's own creation time of the version in use (CredentialObservation.observed_rotated_at)
where a store provides it, else the recorded last_rotated_at, else issued_at, else registration.
The rotation check should filter on its rotation_due_at annotation.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import (
    Case,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from governance.models import Credential, Workflow
from governance.models.lifecycle import (
    CredentialObservation,
    CredentialRevocation,
    KillSwitchActivation,
    RotationAttempt,
    RotationJob,
)
from governance.permissions import VIEW, restrict

DEFAULT_MAX_AGE_DAYS = 90


def max_age_days_expression() -> Coalesce:
    """The credential's own rotation policy, else its kind's default (settings.STEWARD_THRESHOLDS)."""
    defaults = settings.STEWARD_THRESHOLDS["rotation_max_age_days"]
    by_kind = Case(*(When(kind=kind, then=Value(int(days))) for kind, days in defaults.items()),
                   default=Value(DEFAULT_MAX_AGE_DAYS), output_field=IntegerField())
    return Coalesce("rotation_max_age_days", by_kind, output_field=IntegerField())


def with_observed_rotation(queryset: QuerySet) -> QuerySet:
    """Annotate effective_rotated_at, max_age_days and rotation_due_at (observed times first)."""
    one_day = Value(dt.timedelta(days=1), output_field=DurationField())
    max_age = ExpressionWrapper(F("max_age_days") * one_day, output_field=DurationField())
    return queryset.annotate(
        effective_rotated_at=Coalesce("observation__observed_rotated_at", "last_rotated_at", "issued_at",
                                      "created_at", output_field=DateTimeField()),
        max_age_days=max_age_days_expression(),
    ).annotate(
        rotation_due_at=ExpressionWrapper(F("effective_rotated_at") + max_age, output_field=DateTimeField()),
    )


def with_observed_expiry(queryset: QuerySet) -> QuerySet:
    """Annotate effective_expires_at: the certificate's own expiry as observed, else the recorded one."""
    return queryset.annotate(effective_expires_at=Coalesce("observation__observed_expires_at", "expires_at",
                                                           output_field=DateTimeField()))


# Pages -----------------------------------------------------------------------------------------

def rotation_job_list(*, user, action: str = VIEW):
    return (restrict(RotationJob.objects.all(), user, action)
            .select_related("credential__system", "credential__owner", "requested_by")
            .order_by("-created_at", "-pk"))


def rotation_attempts(*, job: RotationJob):
    """Attempts of a job the caller was already allowed to see."""
    return RotationAttempt.objects.filter(job=job).order_by("number")


def kill_switch_list(*, user):
    return (restrict(KillSwitchActivation.objects.all(), user, VIEW)
            .select_related("workflow", "activated_by").order_by("-started_at", "-pk"))


def kill_switch_steps(*, activation: KillSwitchActivation):
    return activation.steps.select_related("credential").order_by("position")


def credential_lifecycle(*, user, credential: Credential) -> dict:
    """A credential's observation, recent rotation jobs and revocations (for its pages)."""
    return {
        "observation": CredentialObservation.objects.filter(credential=credential).first(),
        "rotation_jobs": rotation_job_list(user=user).filter(credential=credential)[:10],
        "revocations": restrict(CredentialRevocation.objects.filter(credential=credential), user, VIEW)[:10],
    }


def workflow_kill_switches(*, user, workflow: Workflow):
    return kill_switch_list(user=user).filter(workflow=workflow)[:20]


def shared_credentials(*, workflow: Workflow) -> dict[int, int]:
    """credential id -> how many other non-retired workflows use it (a kill switch stops those too)."""
    from django.db.models import Count

    rows = (Credential.objects.filter(bindings__workflow=workflow)
            .annotate(others=Count("bindings", filter=~Q(bindings__workflow=workflow)
                                   & ~Q(bindings__workflow__status="retired")))
            .values_list("pk", "others"))
    return {pk: others for pk, others in rows}
