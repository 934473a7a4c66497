"""Builders for approval tests: policies, valid payloads per action, and filed requests."""

from __future__ import annotations

import datetime as dt
import itertools

from django.contrib.auth.models import Group
from django.utils import timezone

from governance.audit import Actor
from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import Credential, Workflow
from governance.models.approvals import ApprovalAction, ApprovalPolicy
from governance.models.integrations import Delegation, Integration
from governance.services import approvals
from tests.factories import SecretStoreFactory
from tests.factories_integrations import delegate, make_integration

A = ApprovalAction
ALL_ACTIONS = [code for code in A.values]
_counter = itertools.count(1)


def make_policy(*, name: str = "Standard", groups=(), required: int = 1, owner_may_approve: bool = False,
                actions=None, defaults=None, expiry_hours: int = 72, reminder_before_hours: int = 24,
                escalation_group: Group | None = None, escalation_after_hours: int | None = None) -> ApprovalPolicy:
    """A policy (by default: every action, default for all). An existing one of that name is reused."""
    existing = ApprovalPolicy.objects.filter(name=name).first()
    if existing is not None:
        return existing
    actions = list(ALL_ACTIONS if actions is None else actions)
    policy = ApprovalPolicy.objects.create(
        name=name, required_approvals=required, owner_may_approve=owner_may_approve, expiry_hours=expiry_hours,
        reminder_before_hours=reminder_before_hours, escalation_group=escalation_group,
        escalation_after_hours=escalation_after_hours, actions=actions,
        default_for_actions=list(actions if defaults is None else defaults),
    )
    policy.approver_groups.set(groups)
    return policy


def integration(name: str = "ci-bot", *, owner):
    """A real integration (the approval services look up its owner): made once per name."""
    existing = Integration.objects.filter(name=name).first()
    if existing is not None:
        return existing
    return make_integration(owner=owner, name=name, scopes=["read", "file_requests", "decide_requests"])[0]


def integration_actor(person, *, name: str = "ci-bot", owner=None) -> Actor:
    """An integration acting for person: owned by owner (default: person), delegated to by person otherwise."""
    made = integration(name, owner=owner or person)
    if made.owner_id != person.pk and not Delegation.objects.filter(
            person=person, integration=made, revoked_at__isnull=True).exists():
        delegate(person, made)
    return Actor.for_integration(made, on_behalf_of=person)


def payload_for(action: str, estate, personas) -> tuple[object, dict]:
    """A target and a payload that validate (and execute) for each action, on the test estate."""
    n = next(_counter)
    if action == A.PROVISION_CREDENTIAL:
        store = SecretStoreFactory(name=f"openbao-{n}")
        return estate["workflow"], {
            "name": f"payments-deploy-key-{n}", "kind": "api_key", "system": estate["system"].pk,
            "identifier": f"new-key-{n}", "store": store.pk, "store_path": f"secret/data/payments/new-{n}",
            "scopes": ["deploy:write"], "privilege_level": "write", "purpose": "deploy to production",
        }
    if action == A.REGISTER_WORKFLOW:
        return None, {"name": f"payments-batch-{n}", "kind": "scheduled_job", "platform": "Airflow",
                      "criticality": "high", "can_provision": True, "systems": [estate["system"].pk]}
    if action == A.PRIVILEGED_SCOPE_CHANGE:
        return estate["credential"], {"scopes": ["deploy:write", "deploy:admin"], "privilege_level": "admin"}
    if action == A.OWNERSHIP_TRANSFER:
        return estate["system"], {"new_owner": personas.backup_owner.pk}
    if action == A.REACTIVATION:
        workflow = estate["workflow"]
        Workflow.objects.filter(pk=workflow.pk).update(status=WorkflowStatus.SUSPENDED)
        Credential.objects.filter(pk=estate["credential"].pk).update(status=CredentialStatus.SUSPENDED)
        workflow.refresh_from_db()
        return workflow, {}
    if action == A.RETIREMENT:
        return estate["workflow"], {}
    if action == A.RISK_ACCEPTANCE:
        return risk_finding(estate), {"expires_at": (timezone.now() + dt.timedelta(days=60)).isoformat()}
    raise ValueError(action)


def risk_finding(estate):
    """An open finding on the estate's credential (the checks capability's catalogue and factory)."""
    from governance.models.checks import Check, Finding
    from tests.factories_checks import FindingFactory, load_catalogue

    if not Check.objects.filter(code="rotation-age").exists():
        load_catalogue()
    existing = Finding.objects.filter(failed_check__code="rotation-age", object_type="governance.credential",
                                      object_id=estate["credential"].pk, state="open").first()
    return existing or FindingFactory.for_object(estate["credential"], code="rotation-age")


def risk_acceptance_available() -> bool:
    try:
        import governance.services.findings  # noqa: F401
    except ImportError:
        return False
    return True


def file_request(actor: Actor, action: str, estate, personas, *, justification: str = "Needed for the release"):
    target, payload = payload_for(action, estate, personas)
    return approvals.approval_request_file(actor=actor, action=action, target=target, payload=payload,
                                           justification=justification)
