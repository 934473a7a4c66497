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
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import Binding, Credential, Workflow
from governance.models.lifecycle import (
    MANUAL_ACTIONS,
    CredentialObservation,
    CredentialRevocation,
    KillSwitchActivation,
    KillSwitchMode,
    RotationAttempt,
    RotationJob,
    StepAction,
    StepStatus,
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


ROTATION_DUE_SOON_DAYS = 14
_LIVE = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)


def credential_lifecycle_badges(*, credential: Credential, now: dt.datetime | None = None) -> dict:
    """The credential page's lifecycle badges, from the observed truth (one query): lifecycle_badges()."""
    row = (with_observed_expiry(with_observed_rotation(Credential.objects.filter(pk=credential.pk)))
           .values("rotation_due_at", "max_age_days", "effective_expires_at", "effective_rotated_at").first()) or {}
    return lifecycle_badges(status=credential.status, due_at=row.get("rotation_due_at"),
                            expires_at=row.get("effective_expires_at"), attested_at=credential.last_attested_at,
                            now=now or timezone.now())


def swept_lifecycle_badges(*, credential: Credential, now: dt.datetime | None = None) -> dict:
    """A list row's lifecycle badges, from what the sweep stored (no query): lifecycle_badges().

    Before its first sweep a credential has only its recorded expiry, and no rotation due date yet.
    """
    expires_at = credential.swept_expires_at if credential.swept_expires_at is not None else credential.expires_at
    return lifecycle_badges(status=credential.status, due_at=credential.swept_rotation_due_at, expires_at=expires_at,
                            attested_at=credential.last_attested_at, now=now or timezone.now())


def lifecycle_badges(*, status: str, due_at, expires_at, attested_at, now: dt.datetime) -> dict:
    """A credential's lifecycle at a glance, the one rule for its page and its list.

    Rotation overdue or due soon (within ROTATION_DUE_SOON_DAYS), expired or expiring (within the
    certificate warning days: a certificate past its notAfter is expired whatever its recorded status
    says), and when it was last attested. "shown_status" is what its status shows: never plain "active"
    once it has expired.
    """
    thresholds = settings.STEWARD_THRESHOLDS
    badges, rotation, expiry = [], None, None
    live = status in _LIVE
    if live and due_at is not None:
        if due_at <= now:
            rotation = ("bad", f"rotation overdue since {due_at:%Y-%m-%d}")
        elif due_at <= now + dt.timedelta(days=ROTATION_DUE_SOON_DAYS):
            rotation = ("warn", f"rotation due {due_at:%Y-%m-%d}")
    expired = expires_at is not None and expires_at <= now
    if expired:
        expiry = ("bad", f"expired {expires_at:%Y-%m-%d}")
    elif live and expires_at is not None and expires_at <= now + dt.timedelta(
            days=thresholds["certificate_warning_days"]):
        expiry = ("warn", f"expires in {(expires_at - now).days} days ({expires_at:%Y-%m-%d})")
    badges += [badge for badge in (rotation, expiry) if badge is not None]
    if attested_at is None:
        badges.append(("warn", "never attested"))
    elif attested_at < now - dt.timedelta(days=thresholds["attestation_period_days"]):
        badges.append(("warn", f"last attested {attested_at:%Y-%m-%d}: overdue"))
    else:
        badges.append(("ok", f"attested {attested_at:%Y-%m-%d}"))
    shown = CredentialStatus.EXPIRED if expired and status == CredentialStatus.ACTIVE else status
    return {"badges": badges, "rotation": rotation, "expiry": expiry, "rotation_due_at": due_at,
            "expires_at": expires_at, "expired": expired, "shown_status": shown, "status_differs": shown != status}


LIFECYCLE_FILTERS = {
    "rotation_overdue": "Rotation overdue",
    "expiring": "Expiring within 30 days",
    "expired": "Expired",
}


def lifecycle_filter(queryset: QuerySet, name: str, now: dt.datetime | None = None) -> QuerySet:
    """The credential list's lifecycle filters, on what the sweep stored (each walks a (column, id) index)."""
    now = now or timezone.now()
    if name == "rotation_overdue":
        return queryset.filter(swept_rotation_due_at__lte=now, status__in=_LIVE)
    if name == "expiring":
        return queryset.filter(swept_expires_at__gt=now, swept_expires_at__lte=now + dt.timedelta(days=30),
                               status__in=_LIVE)
    if name == "expired":
        return queryset.filter(Q(swept_expires_at__lte=now) | Q(status=CredentialStatus.EXPIRED))
    return queryset


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
    return activation.steps.select_related("credential", "assignee", "closed_by").order_by("position")


# Steps by hand that stop a credential being accepted: until they are closed it is still live.
_STOPPING_BY_HAND = (StepAction.MANUAL_SUSPEND, StepAction.MANUAL_ISSUER)


def workflow_live_after_kill_switch(*, workflow: Workflow, bindings) -> dict | None:
    """After the workflow's latest kill switch (a drill proves only, a reactivation ends it): the bound
    credentials still live, that is still active in Steward (a suspension that failed) or with a step done
    by hand (suspend, revoke where it is accepted) not yet closed. None when there is nothing to warn about.
    Two queries, whatever the number of bindings (bindings are the page's, already loaded)."""
    latest = (KillSwitchActivation.objects.filter(workflow=workflow)
              .exclude(mode=KillSwitchMode.DRILL).order_by("-started_at", "-id").first())
    if latest is None or latest.mode != KillSwitchMode.ACTIVATE:
        return None
    awaiting = set(latest.steps.filter(action__in=_STOPPING_BY_HAND, status=StepStatus.AWAITING)
                   .values_list("credential_id", flat=True))
    live = [binding.credential for binding in bindings
            if binding.credential.status == CredentialStatus.ACTIVE or binding.credential_id in awaiting]
    return {"activation": latest, "credentials": live} if live else None


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
    """credential id -> how many other non-retired workflows use it (a kill switch stops those too).

    The count is a subquery over the credential's other bindings: counting through the join that
    selected this workflow's bindings would only ever see this workflow (and count 0).
    """
    others = (Binding.objects.filter(credential=OuterRef("pk"), suspended_at__isnull=True)
              .exclude(workflow=workflow).exclude(workflow__status=WorkflowStatus.RETIRED)
              .order_by().values("credential").annotate(n=Count("workflow", distinct=True)).values("n"))
    rows = (Credential.objects.filter(bindings__workflow=workflow).distinct()
            .annotate(others=Coalesce(Subquery(others, output_field=IntegerField()), 0))
            .values_list("pk", "others"))
    return {pk: others for pk, others in rows}


def workflow_live_credentials(*, workflow: Workflow) -> list[dict]:
    """While a workflow is suspended: its credentials still accepted somewhere, each with why (a few queries).

    Live: still active in Steward (a step failed, or it was never suspended); isolated but its rotation
    has not succeeded; or suspended only in Steward's store while a step done by hand at the issuer is
    still open or was waived.
    """
    if workflow.status != WorkflowStatus.SUSPENDED:
        return []
    last = (KillSwitchActivation.objects.filter(workflow=workflow, mode=KillSwitchMode.ACTIVATE)
            .order_by("-started_at", "-pk").first())
    steps = list(last.steps.exclude(credential=None).values("credential_id", "action", "status")) if last else []
    by_credential: dict[int, list[dict]] = {}
    for step in steps:
        by_credential.setdefault(step["credential_id"], []).append(step)
    bindings = (Binding.objects.filter(workflow=workflow).select_related("credential")
                .order_by("credential__name", "credential_id"))
    live = []
    for binding in bindings:
        credential = binding.credential
        mine = by_credential.get(credential.pk, [])
        open_manual = [s for s in mine if s["action"] in MANUAL_ACTIONS and s["status"] == StepStatus.AWAITING]
        waived = [s for s in mine if s["action"] in MANUAL_ACTIONS and s["status"] == StepStatus.WAIVED]
        if binding.suspended_at is not None:
            rotated = any(s["action"] == StepAction.ISOLATE_CREDENTIAL and s["status"] == StepStatus.SUCCEEDED
                          for s in mine)
            if not rotated and not any(s["action"] == StepAction.MANUAL_ROTATE and s["status"] ==
                                       StepStatus.MARKED_DONE for s in mine):
                live.append({"credential": credential, "why": "isolated, but its new secret is not proven yet: the "
                                                              "value this workflow held still works"})
            elif open_manual or waived:
                live.append({"credential": credential, "why": "rotated in its store; the step at the issuer is "
                                                              + ("waived" if waived else "still to do by hand")})
            continue
        if credential.status == CredentialStatus.ACTIVE:
            live.append({"credential": credential, "why": "still active: " + (
                "its suspension is to do by hand" if open_manual else "its suspension failed or was never run")})
        elif open_manual:
            live.append({"credential": credential, "why": "suspended in Steward's store only: revoking it where "
                                                          "it is accepted is still to do by hand"})
        elif waived:
            live.append({"credential": credential, "why": "suspended in Steward's store only: the step at the "
                                                          "issuer was waived"})
    return live
