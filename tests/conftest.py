"""Named personas (STYLE.md): owner, backup owner, approver, auditor, security admin, outsider."""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group

from governance import roles
from governance.audit import Actor
from tests.factories import CredentialFactory, PersonFactory, SystemFactory, TeamFactory, WorkflowFactory


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_audit_checkpoints(settings, tmp_path):
    """Each test anchors its audit chain in its own checkpoint file: no other test's database saw those."""
    settings.STEWARD_AUDIT_CHECKPOINT_FILE = str(tmp_path / "audit-checkpoints.jsonl")
    settings.STEWARD_AUDIT_CHECKPOINT_SINKS = ["file"]


@pytest.fixture(autouse=True)
def _mail_sent_in_process(request, monkeypatch):
    """Mail is outbox work: a MailDelivery that the task governance.mail.deliver sends in a worker.

    In tests that task runs in-process, the real task body, when the outbox publishes its message
    (once the captured on-commit callbacks run), so a test sees the message in mail.outbox as a
    person would see it in their inbox. Tests with a real broker and worker (live_broker) opt out.
    """
    if "live_broker" in request.fixturenames:
        return
    from governance.tasks.mail import mail_deliver

    def run_here(args=None, kwargs=None, **options):
        return mail_deliver.apply(args=args, kwargs=kwargs, task_id=options.get("task_id"))

    monkeypatch.setattr(mail_deliver, "apply_async", run_here)


@dataclass
class Personas:
    owner: object
    backup_owner: object
    approver: object
    auditor: object
    secadmin: object
    outsider: object
    team: object
    other_team: object

    def all(self):
        return {
            "owner": self.owner,
            "backup_owner": self.backup_owner,
            "approver": self.approver,
            "auditor": self.auditor,
            "secadmin": self.secadmin,
            "outsider": self.outsider,
        }


@pytest.fixture
def personas(db):
    for name in roles.ROLE_GROUPS:  # test bootstrap; production creates them through role_groups_ensure
        Group.objects.get_or_create(name=name)
    team = TeamFactory(name="Payments")
    other_team = TeamFactory(name="Platform")
    owner = PersonFactory(username="olivia.owner", teams=[team])
    backup_owner = PersonFactory(username="bruno.backup", teams=[team])
    team.manager = backup_owner
    team.save()
    approver = PersonFactory(username="ada.approver", teams=[other_team])
    auditor = PersonFactory(username="aude.auditor")
    auditor.groups.add(Group.objects.get(name=roles.AUDITORS))
    secadmin = PersonFactory(username="sam.secadmin")
    secadmin.groups.add(Group.objects.get(name=roles.SECURITY_ADMINS))
    outsider = PersonFactory(username="oscar.outsider")
    return Personas(owner, backup_owner, approver, auditor, secadmin, outsider, team, other_team)


@pytest.fixture
def estate(personas):
    """A small estate owned by the owner persona's team, plus one object of another team."""
    system = SystemFactory(name="payments-db", owner=personas.owner, team=personas.team)
    credential = CredentialFactory(name="payments-deploy-key", system=system, owner=personas.owner,
                                   team=personas.team)
    workflow = WorkflowFactory(name="payments-deploy", owner=personas.owner, team=personas.team)
    workflow.systems.add(system)
    from governance.models import Binding

    binding = Binding.objects.create(workflow=workflow, credential=credential, purpose="deploy")
    other_system = SystemFactory(name="platform-k8s", owner=personas.approver, team=personas.other_team)
    other_credential = CredentialFactory(name="platform-token", system=other_system, owner=personas.approver,
                                         team=personas.other_team)
    other_workflow = WorkflowFactory(name="platform-sync", owner=personas.approver, team=personas.other_team)
    return {
        "system": system, "credential": credential, "workflow": workflow, "binding": binding,
        "other_system": other_system, "other_credential": other_credential, "other_workflow": other_workflow,
    }


def actor(user):
    return Actor.for_user(user)


@pytest.fixture
def system_actor():
    return Actor.system(task_id="test")
