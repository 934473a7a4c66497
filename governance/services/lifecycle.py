"""Lifecycle services shared by rotation, deprovisioning and the kill switch; observed truth.

Connectors talk to the network, so no service holds a database transaction open while one
runs: a service claims its unit of work with a compare-and-set update, calls the connector, then
records the outcome (and its audit event) in one short transaction. Nothing is recorded as
rotated, suspended or revoked until the connector has proved it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from fast_update.fast import fast_update

from governance import task_names
from governance.audit import Actor, PendingEvent, audit_append, audit_append_many, field_changes, object_type_of
from governance.checks import all_checks
from governance.choices import CredentialStatus
from governance.connectors import registry
from governance.connectors.aws_common import AWSSettings
from governance.connectors.base import ConnectorError, Misconfigured, ReferenceBroken, Unreachable, Unsupported
from governance.connectors.postgres_role import PostgresSettings
from governance.connectors.redis_acl import RedisSettings
from governance.models import Credential, System
from governance.models.approvals import ApprovalRequest
from governance.models.lifecycle import ConnectorKind, ConnectorTarget, CredentialObservation, ObservationState
from governance.outbox import enqueue
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_security_admin, snapshot
from governance.services.drift import DRIFT_CHECK, credential_drift_read, drift_observation_values
from governance.services.mail import mail_queue
from governance.services.notifications import notification_send

logger = logging.getLogger(__name__)

# Check codes (governance.lifecycle_checks) whose findings lifecycle events change, once registered.
SOURCE_BROKEN_CHECK = "credential-source-resolves"
ROTATION_FAILED_CHECK = "rotation-succeeds"
ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")
TARGET_SETTINGS = {ConnectorKind.POSTGRES_ROLE: PostgresSettings, ConnectorKind.REDIS_ACL: RedisSettings,
                   ConnectorKind.AWS_IAM: AWSSettings}
LIVE_STATUSES = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)


def lifecycle_actor(task_id: str = "") -> Actor:
    return Actor.system(task_id=task_id, label="steward lifecycle")


def credential_for_connector(pk: int) -> Credential:
    """A credential with everything the registry reads, in one query."""
    return Credential.objects.select_related("store", "system__connector_target", "owner").get(pk=pk)


# Credential fields set from a connector's proven result -------------------------------------------

def credential_record_change(*, actor: Actor, credential: Credential, values: Mapping[str, Any], action: str,
                             summary: str, expected_status: str | None = None) -> bool:
    """Write proven facts onto a credential, with its audit event. Call inside the caller's transaction.

    expected_status makes the write a compare-and-set: when the credential's status is no longer
    that (another actor changed it), nothing is written and False is returned. The status itself
    changes only through services.states.
    """
    if "status" in values:
        raise ValueError("A credential's status changes through services.states.state_transition().")
    fields = list(values)
    queryset = Credential.objects.filter(pk=credential.pk)
    if expected_status is not None:
        queryset = queryset.filter(status=expected_status)
    before = snapshot(credential, fields)
    changed = queryset.update(**values, updated_at=timezone.now())
    if not changed:
        return False
    for name, value in values.items():
        setattr(credential, name, value)
    audit_append(actor=actor, action=action, target=credential, summary=summary,
                 changes=field_changes(before, dict(values)))
    return True


def credential_record_changes(*, actor: Actor, changes: list[tuple[Credential, Mapping[str, Any], str, str]]) -> None:
    """credential_record_change for a batch: (credential, values, action, summary) each, in bulk.

    One UPDATE per set of fields written and one audit insert for the batch; the events are the
    ones credential_record_change would append one by one. Call inside the caller's transaction.
    """
    if not changes:
        return
    if any("status" in values for _credential, values, _action, _summary in changes):
        raise ValueError("A credential's status changes through services.states.state_transition().")
    now = timezone.now()
    by_fields: dict[tuple[str, ...], list[Credential]] = {}
    events = []
    for credential, values, action, summary in changes:
        before = snapshot(credential, list(values))
        for name, value in values.items():
            setattr(credential, name, value)
        credential.updated_at = now
        by_fields.setdefault(tuple(sorted(values)), []).append(credential)
        events.append(PendingEvent(action=action, object_type=object_type_of(credential), object_id=credential.pk,
                                   object_repr=str(credential), summary=summary,
                                   changes=field_changes(before, dict(values))))
    for fields, credentials in by_fields.items():
        fast_update(Credential.objects.all(), credentials, [*fields, "updated_at"], batch_size=500)
    audit_append_many(actor=actor, events=events)


# Connector targets --------------------------------------------------------------------------------

def connector_target_set(*, actor: Actor, system: System, kind: str, settings: Mapping[str, Any]) -> ConnectorTarget:
    """Say how Steward reaches a system's accounts (security admins). Settings hold names, never secrets."""
    ensure_security_admin(actor)
    if kind not in ConnectorKind.values:
        raise ValidationError({"kind": f"Choose one of {', '.join(ConnectorKind.values)}."})
    settings = dict(settings)
    reject_secret_values({"settings": settings}, ["settings"])
    for name in ("admin_user_env_var", "admin_password_env_var"):
        value = settings.get(name, "")
        if value and not ENV_VAR.match(str(value)):
            raise ValidationError({"settings": f"{name} must name an environment variable (A-Z, 0-9, _)."})
    try:
        TARGET_SETTINGS[kind].from_target(settings)
    except Misconfigured as error:
        raise ValidationError({"settings": error.reason}) from None
    with transaction.atomic():
        target = ConnectorTarget.objects.select_for_update().filter(system=system).first()
        before = snapshot(target, ("kind", "settings")) if target else {}
        if target is None:
            target = ConnectorTarget(system=system)
        target.kind, target.settings = kind, settings
        target.save()
        after = snapshot(target, ("kind", "settings"))
        if before != after:
            audit_append(actor=actor, action="connectortarget.set", target=target,
                         summary=f"{system} is reached as a {target.get_kind_display()}",
                         changes=field_changes(before, after))
    return target


# Observed truth: reconciliation -------------------------------------------------------------------

def _observation_values(credential: Credential, now: dt.datetime) -> dict[str, Any]:
    try:
        connector, ref = registry.connector_for(credential)
        observed = connector.observe(ref)
        drift = credential_drift_read(credential=credential, connector=connector, ref=ref)
    except Unsupported as error:
        return {"state": ObservationState.UNSUPPORTED, "detail": error.reason}
    except ReferenceBroken as error:
        return {"state": ObservationState.BROKEN, "detail": error.reason}
    except Unreachable as error:
        return {"state": ObservationState.UNREACHABLE, "detail": error.reason}
    except ConnectorError as error:
        return {"state": ObservationState.ERROR, "detail": error.reason}
    return {
        "state": ObservationState.OK, "detail": observed.detail[:1000], "observed_version": observed.version,
        "observed_rotated_at": observed.created_at, "observed_expires_at": observed.expires_at,
        "store_state": observed.state, **drift_observation_values(drift, observed.detail),
    }


def credential_observe(*, credential: Credential, now: dt.datetime | None = None,
                       actor: Actor | None = None) -> tuple[CredentialObservation, bool]:
    """Read a credential's metadata from its store; record it. Returns (observation, state changed).

    Only a change of state (resolves, broken, unreachable, ...) is audited: a reconciliation that
    finds what it found last time writes the observation and no event.
    """
    now = now or timezone.now()
    actor = actor or lifecycle_actor("reconcile")
    values = _observation_values(credential, now)
    with transaction.atomic():
        observation = CredentialObservation.objects.select_for_update().filter(credential=credential).first()
        previous = observation.state if observation else ""
        if observation is None:
            observation = CredentialObservation(credential=credential)
        if values["state"] in (ObservationState.BROKEN, ObservationState.UNSUPPORTED):
            # Nothing resolves: forget what was observed before.
            values = {**values, "observed_version": "", "observed_rotated_at": None, "observed_expires_at": None,
                      "store_state": "", "privileges": [], "drift": []}
        # UNREACHABLE or ERROR keep the last observed facts; only the state and the reason change.
        for name, value in values.items():
            setattr(observation, name, value)
        observation.broken_since = (observation.broken_since or now) if observation.state == "broken" else None
        drifted = observation.state == ObservationState.DRIFTED
        observation.drift_since = (observation.drift_since or now) if drifted else None
        observation.observed_at = now
        observation.save()
        changed = previous != observation.state
        if changed:
            state = observation.get_state_display().lower()
            audit_append(actor=actor, action="credential.observe", target=credential,
                         summary=f"{credential}: {state} ({observation.detail})"[:500],
                         changes={"observation": {"before": previous or None, "after": observation.state}})
            if ObservationState.BROKEN in (previous, observation.state):
                request_sweep([SOURCE_BROKEN_CHECK], trigger="reconciliation")
            if ObservationState.DRIFTED in (previous, observation.state):
                request_sweep([DRIFT_CHECK], trigger="reconciliation")
    return observation, changed


def reconcilable_credentials():
    return (Credential.objects.filter(status__in=LIVE_STATUSES, store__kind__in=registry.CONNECTOR_STORE_KINDS)
            .select_related("store", "system__connector_target", "observation").order_by("pk"))


def credentials_reconcile(*, credential_ids: Iterable[int] | None = None, now: dt.datetime | None = None) -> dict:
    """Observe each managed credential in its store (all of them, or the ids given). Returns counts by state."""
    now = now or timezone.now()
    queryset = reconcilable_credentials()
    if credential_ids is not None:
        queryset = queryset.filter(pk__in=list(credential_ids))
    counts: dict[str, int] = {}
    for credential in queryset.iterator(chunk_size=200):
        observation, _ = credential_observe(credential=credential, now=now)
        counts[observation.state] = counts.get(observation.state, 0) + 1
    return counts


def approval_granted(approval_request, *, action: str) -> bool:
    """The request is for this action and approved (read from the database when it is stored there)."""
    if getattr(approval_request, "action", None) != action:
        return False
    status = getattr(approval_request, "status", None)
    if getattr(approval_request, "pk", None) is not None:

        stored = ApprovalRequest.objects.filter(pk=approval_request.pk, action=action).values_list(
            "status", flat=True).first()
        status = stored or status
    return status in ("approved", "executed")


# Side effects after commit (outbox work, written in the caller's transaction) --------------------

def request_sweep(codes: list[str], *, trigger: str) -> None:
    """After commit, re-evaluate the registered checks whose findings this change affects."""
    known = [code for code in codes if code in all_checks()]
    if known:
        enqueue(task_names.CHECKS_SWEEP, checks=known, trigger=trigger[:40])


def notify_owner(credential: Credential, *, subject: str, body: str, kind: str, dedupe_key: str) -> None:
    """Tell the credential's owner (or its team's manager): an inbox notification and an email.

    Both are written in the caller's transaction; the email is sent by a worker after commit. kind is a
    NotificationKind, dedupe_key names the event (the inbox tells a person of it once).
    """
    recipient = credential.owner or getattr(credential.team, "manager", None)
    if recipient is None:
        return
    notification_send(recipient=recipient, kind=kind, subject=subject.removeprefix("[Steward] "), body=body,
                      link=credential.get_absolute_url(), target=credential, dedupe_key=dedupe_key)
    if not recipient.email:
        return
    base = settings.STEWARD_BASE_URL.rstrip("/")
    mail_queue(subject=subject, body=f"{body}\n\n{base}{credential.get_absolute_url()}\n",
               recipients=[recipient.email], from_email=settings.DEFAULT_FROM_EMAIL)
