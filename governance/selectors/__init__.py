"""Reads: every selector takes the user and returns restricted, prefetched querysets (inventory here)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import BooleanField, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from governance.choices import MANAGED_STORE_KINDS
from governance.models import AuditEvent, Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.permissions import VIEW, restrict
from governance.search import matching


def related_count(rows: QuerySet, field: str) -> Coalesce:
    """How many of rows point at the outer row through field, as a correlated subquery.

    Unlike Count() over a join it needs no GROUP BY over the whole list, so ORDER BY <column> LIMIT 50
    still walks an index and the count is computed for the fifty rows shown.
    """
    counted = rows.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def workflow_list(*, user, action: str = VIEW):
    unmanaged = Binding.objects.filter(unmanaged_binding(), workflow=OuterRef("pk"))
    return (
        restrict(Workflow.objects.all(), user, action)
        .select_related("owner", "team")
        .annotate(credential_count=related_count(Binding.objects.all(), "workflow"),
                  # LIMIT 1 keeps it per row: as EXISTS, PostgreSQL hashed every unmanaged binding of the estate.
                  has_unmanaged_credential=Coalesce(Subquery(unmanaged.annotate(flag=Value(True)).values("flag")[:1],
                                                             output_field=BooleanField()), Value(False)))
    )


def credential_list(*, user, action: str = VIEW):
    return (
        restrict(Credential.objects.all(), user, action)
        .select_related("owner", "team", "system", "store")
        .annotate(workflow_count=related_count(Binding.objects.all(), "credential"))
    )


def system_list(*, user, action: str = VIEW):
    return (
        restrict(System.objects.all(), user, action)
        .select_related("owner", "team")
        .annotate(credential_count=related_count(Credential.objects.all(), "system"))
    )


def secret_store_list(*, user, action: str = VIEW):
    return restrict(SecretStore.objects.all(), user, action).annotate(
        credential_count=related_count(Credential.objects.all(), "store")
    )


def person_list(*, user):
    return restrict(Person.objects.all(), user, VIEW).prefetch_related("groups")


def team_list(*, user):
    return restrict(Team.objects.all(), user, VIEW).select_related("manager")


def workflow_bindings(*, user, workflow: Workflow):
    return (
        restrict(Binding.objects.filter(workflow=workflow), user, VIEW)
        .select_related("credential__store", "credential__system", "credential__owner")
        .order_by("credential__name")
    )


def credential_bindings(*, user, credential: Credential):
    """Every workflow that uses a credential, as far as the user may see workflows."""
    visible = restrict(Workflow.objects.all(), user, VIEW)
    return (
        Binding.objects.filter(credential=credential, workflow__in=visible)
        .select_related("workflow__owner")
        .order_by("workflow__name")
    )


def object_history(*, obj):
    """Audit events of one object. Callers pass an object the user was already allowed to see."""
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("-sequence")


def audit_event_list(*, user):
    return restrict(AuditEvent.objects.all(), user, VIEW)


def owned_by(*, user, person: Person):
    return {
        "workflows": restrict(Workflow.objects.filter(owner=person), user, VIEW),
        "credentials": restrict(Credential.objects.filter(owner=person), user, VIEW).select_related("system"),
        "systems": restrict(System.objects.filter(owner=person), user, VIEW),
    }


PRESENT, MISSING, STALE = "present", "missing", "stale"


UNMANAGED_NAMES_SHOWN = 3


def unmanaged_binding() -> Q:
    """A binding whose credential is outside a managed store (no store, or one Steward cannot rotate in)."""
    return Q(credential__store__isnull=True) | ~Q(credential__store__kind__in=MANAGED_STORE_KINDS)


def workflow_governance_record(*, workflow: Workflow, bindings) -> list[dict]:
    """The governance record of a workflow whose bindings (with credential and store) are at hand."""
    unmanaged = [b.credential.name for b in bindings if b.credential.store is None or not b.credential.store.is_managed]
    return workflow_record_items(workflow=workflow, credential_count=len(bindings), unmanaged_count=len(unmanaged),
                                 unmanaged_names=unmanaged[:UNMANAGED_NAMES_SHOWN])


def workflow_record_items(*, workflow: Workflow, credential_count: int, unmanaged_count: int,
                          unmanaged_names: list[str]) -> list[dict]:
    """The four things the portal insists on for a workflow, each present, missing or stale.

    From counts, so a page of many workflows (the owner's home) needs no binding rows: unmanaged_names
    are the first UNMANAGED_NAMES_SHOWN of its credentials outside a managed store."""
    items = []
    owner = workflow.owner
    if owner is None:
        items.append({"name": "Owner", "state": MISSING, "detail": "Orphaned: no accountable owner."})
    elif owner.is_departed:
        items.append({"name": "Owner", "state": STALE, "detail": f"{owner} has departed."})
    else:
        team = f", backup team {workflow.team}" if workflow.team_id else ", no backup team"
        items.append({"name": "Owner", "state": PRESENT, "detail": f"{owner}{team}."})

    if not credential_count:
        items.append({"name": "Credential source", "state": MISSING, "detail": "No credentials recorded."})
    elif unmanaged_count:
        names = ", ".join(unmanaged_names)
        items.append({"name": "Credential source", "state": MISSING,
                      "detail": f"{unmanaged_count} credential(s) outside a managed store: {names}."})
    else:
        items.append({"name": "Credential source", "state": PRESENT,
                      "detail": f"All {credential_count} credential(s) in managed stores."})

    policy = getattr(workflow, "approval_policy", None)
    if policy is None:
        items.append({"name": "Approval path", "state": MISSING,
                      "detail": "No approval policy: the default policy per action applies."})
    else:
        items.append({"name": "Approval path", "state": PRESENT, "detail": f"Policy {policy}."})

    max_age = timedelta(days=settings.STEWARD_THRESHOLDS["drill_max_age_days"])
    if not workflow.shutdown_procedure.strip() or not workflow.kill_switch_steps.strip():
        items.append({"name": "Shutdown procedure", "state": MISSING,
                      "detail": "No runbook or kill-switch steps documented."})
    elif workflow.last_drilled_at is None:
        items.append({"name": "Shutdown procedure", "state": STALE, "detail": "Documented, never drilled."})
    elif workflow.last_drill_result != "passed" or timezone.now() - workflow.last_drilled_at > max_age:
        items.append({"name": "Shutdown procedure", "state": STALE,
                      "detail": f"Last drill {workflow.last_drilled_at:%Y-%m-%d}: "
                                f"{workflow.get_last_drill_result_display().lower()}."})
    else:
        items.append({"name": "Shutdown procedure", "state": PRESENT,
                      "detail": f"Drilled {workflow.last_drilled_at:%Y-%m-%d}, passed."})
    return items


SEARCH_LIMIT = 10


def global_search(*, user, query: str) -> dict[str, list]:
    """Workflows, credentials, systems and people matching a name, identifier or ticket key."""
    query = query.strip()
    if len(query) < 2:
        return {}
    results = {
        "workflows": list(restrict(Workflow.objects.filter(matching(Workflow, ("name", "platform"), query)),
                                   user, VIEW).select_related("owner")[:SEARCH_LIMIT]),
        "credentials": list(restrict(Credential.objects.filter(
            matching(Credential, ("name", "identifier", "fingerprint", "store_path"), query)), user, VIEW)
            .select_related("system")[:SEARCH_LIMIT]),
        "systems": list(restrict(System.objects.filter(name__icontains=query), user, VIEW)[:SEARCH_LIMIT]),
        "people": list(restrict(Person.objects.filter(
            Q(username__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
            | Q(email__icontains=query)), user, VIEW)[:SEARCH_LIMIT]),
    }
    for name, provider in SEARCH_PROVIDERS.items():
        results[name] = list(provider(user=user, query=query)[:SEARCH_LIMIT])
    return results


# Capabilities add their searchable objects (approval requests by ticket key, findings, ...) here.
SEARCH_PROVIDERS: dict = {}
