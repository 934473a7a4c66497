"""seed_demo: the estate's size, determinism, every seeded problem, audit, sign-in and the refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Count
from django.test import override_settings
from django.urls import reverse

from governance import demo, demo_data, roles
from governance.audit import verify_chain
from governance.choices import (
    MANAGED_STORE_KINDS,
    CredentialKind,
    CredentialStatus,
    PersonStatus,
    SystemLifecycle,
    WorkflowKind,
)
from governance.models import AuditEvent, Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.secret_guard import secret_kind
from tests.factories import PersonFactory, TeamFactory

PASSWORD = "demo-pass-for-tests"
DEFAULT_MAX_AGE = 90  # days: the rotation policy when a credential names none
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # as tests/conftest.py, at class scope
# The recorded fingerprint of the estate (dates relative to the anchor). It changes only when the
# demo data or the builder changes: then check the new estate and record the new value here.
RECORDED_FINGERPRINT = "699e613c6596e7c01f74ffe2ab2140005b7e4d7df99ad8d1e296e65a60365b5d"


def fingerprint(anchor: dt.datetime) -> str:
    """A canonical dump of the estate: names, identifiers, owners, stores and anchor-relative dates."""

    def rel(value):
        return None if value is None else (value - anchor).total_seconds()

    def name(obj):
        return None if obj is None else (getattr(obj, "username", None) or obj.name)

    dump = {
        "people": [
            (p.username, p.first_name, p.last_name, p.email, p.job_title, p.status, p.is_active,
             p.has_usable_password(), sorted(p.groups.values_list("name", flat=True)))
            for p in Person.objects.all()
        ],
        "teams": [(t.name, t.slug, name(t.manager), t.description) for t in Team.objects.all()],
        "systems": [
            (s.name, s.lifecycle, s.environment, s.criticality, s.third_party, s.vendor, name(s.owner),
             name(s.team))
            for s in System.objects.all()
        ],
        "stores": [
            (s.name, s.kind, s.address, json.dumps(s.settings, sort_keys=True), s.credential_env_var)
            for s in SecretStore.objects.all()
        ],
        "workflows": [
            (w.name, w.kind, w.platform, w.status, w.criticality, w.can_provision, w.can_change, w.can_rotate,
             w.can_revoke, w.shutdown_procedure, w.kill_switch_steps, rel(w.last_drilled_at),
             w.last_drill_result,
             name(w.owner), name(w.team), sorted(w.systems.values_list("name", flat=True)))
            for w in Workflow.objects.all()
        ],
        "credentials": [
            (c.name, c.kind, c.system.name, c.identifier, c.fingerprint, name(c.store), c.store_path,
             c.store_version, c.scopes, c.privilege_level, rel(c.issued_at), rel(c.last_rotated_at),
             rel(c.expires_at), c.rotation_max_age_days, c.status, rel(c.last_used_at), c.human_use_detected,
             c.human_use_evidence, rel(c.third_party_reviewed_at), name(c.owner), name(c.team), c.notes)
            for c in Credential.objects.select_related("system", "store", "owner", "team")
        ],
        "bindings": [
            (b.workflow.name, b.credential.name, b.purpose, b.scopes_used)
            for b in Binding.objects.select_related("workflow", "credential")
        ],
    }
    canonical = {key: sorted(json.dumps(row, default=str) for row in rows) for key, rows in dump.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def problem_counts(anchor: dt.datetime) -> dict[str, int]:
    """Each seeded problem, found the way a check would find it (independently of the builder)."""
    active = Credential.objects.filter(status=CredentialStatus.ACTIVE)
    certificates = active.filter(kind=CredentialKind.CERTIFICATE)
    overdue = [
        c for c in active
        if anchor - c.last_rotated_at > dt.timedelta(days=c.rotation_max_age_days or DEFAULT_MAX_AGE)
    ]
    stale = anchor - dt.timedelta(days=365)
    return {
        "unmanaged_store_credentials": active.exclude(store__kind__in=MANAGED_STORE_KINDS).count(),
        "rotation_overdue": len(overdue),
        "certificates_expiring": certificates.filter(
            expires_at__gte=anchor, expires_at__lt=anchor + dt.timedelta(days=30)
        ).count(),
        "certificates_expired": certificates.filter(expires_at__lt=anchor).count(),
        "orphaned_workflows": Workflow.objects.filter(owner__isnull=True).count(),
        "orphaned_credentials": Credential.objects.filter(owner__isnull=True).count(),
        "retired_system_active_credentials": active.filter(system__lifecycle=SystemLifecycle.RETIRED).count(),
        "reused_credentials": active.annotate(uses=Count("bindings")).filter(uses__gt=1).count(),
        "wildcard_scope_credentials": sum(
            1 for c in active if any(scope == "*" or scope.endswith(":*") for scope in c.scopes)
        ),
        "admin_credentials": active.filter(privilege_level="admin").count(),
        "human_use_credentials": active.filter(human_use_detected=True).exclude(human_use_evidence="")
        .count(),
        "third_party_unreviewed": active.filter(
            system__third_party=True, third_party_reviewed_at__isnull=True
        ).count(),
        "workflows_without_shutdown": Workflow.objects.filter(shutdown_procedure="").count(),
        "workflows_never_drilled": Workflow.objects.filter(last_drilled_at__isnull=True).count(),
        "workflows_drill_failed": Workflow.objects.filter(last_drill_result="failed").count(),
        "workflows_drill_stale": Workflow.objects.filter(last_drill_result="passed")
        .filter(last_drilled_at__lt=stale).count(),
    }


def build_and_roll_back(anchor: dt.datetime) -> str:
    """Build the estate inside a savepoint, take its fingerprint, and undo it."""

    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            demo.build_demo_estate(password=PASSWORD, anchor=anchor)
            result = fingerprint(anchor)
            raise Undo
    except Undo:
        return result


@pytest.fixture(scope="class")
def demo_estate(django_db_setup, django_db_blocker):
    """One estate for the read-only tests of a class, rolled back when the class is done."""
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            anchor = demo.demo_anchor()
            counts = demo.build_demo_estate(password=PASSWORD, anchor=anchor)
            yield {"anchor": anchor, "counts": counts}
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.mark.usefixtures("demo_estate")
@pytest.mark.django_db
class TestDemoEstate:
    def test_counts_are_in_the_stated_ranges(self, demo_estate):
        counts = demo_estate["counts"]
        realistic = Person.objects.exclude(username__in=demo.SIGN_IN_PERSONAS)
        assert realistic.count() == 15
        assert counts["people"] == Person.objects.count() == 19
        assert counts["people_departed"] == 2
        assert counts["teams"] == 3
        for team in Team.objects.all():
            assert team.manager is not None and team.manager.status == PersonStatus.ACTIVE
            assert team.members.count() >= 5
        assert counts["systems"] == 8 and counts["systems_retired"] == 1
        assert System.objects.filter(third_party=True).exclude(vendor="").count() == 1
        assert counts["secret_stores"] == 7 and counts["secret_stores_unmanaged"] == 3
        assert 35 <= counts["workflows"] <= 45
        assert 140 <= counts["credentials"] <= 160
        assert counts["bindings"] >= counts["credentials"]
        assert not Credential.objects.filter(bindings__isnull=True).exists(), "every credential is bound"
        assert set(Credential.objects.values_list("kind", flat=True)) == set(CredentialKind.values)
        platforms = set(Workflow.objects.values_list("platform", flat=True))
        assert {"GitHub Actions", "GitLab CI", "Jenkins", "Ansible", "Airflow", "LangGraph"} <= platforms
        assert Workflow.objects.filter(kind=WorkflowKind.AI_AGENT, platform="LangGraph").count() >= 2
        assert Workflow.objects.filter(can_provision=True).exists()
        assert Workflow.objects.filter(can_rotate=True).exists()
        assert Workflow.objects.filter(can_revoke=True).exists()
        assert counts["audit_events"] == AuditEvent.objects.count()

    def test_secret_stores_are_configured(self):
        openbao = SecretStore.objects.get(name="openbao-prod")
        assert (openbao.kind, openbao.address) == ("openbao_kv", "http://127.0.0.1:8200")
        assert openbao.credential_env_var == "STEWARD_OPENBAO_TOKEN"
        assert openbao.settings == {"mount": "secret"}
        kinds = dict(SecretStore.objects.values_list("name", "kind"))
        assert kinds["openbao-pki"] == "openbao_pki"
        assert {"aws_secrets_manager", "kubernetes_secret"} <= set(kinds.values())
        assert kinds["legacy-config-files"] == "config_file"
        assert kinds["gitlab-ci-variables"] == "cicd_variable"
        assert kinds["ops-spreadsheet"] == "spreadsheet"

    def test_every_seeded_problem_is_present(self, demo_estate):
        found = problem_counts(demo_estate["anchor"])
        assert found == demo.SEEDED_PROBLEMS
        assert all(count >= 2 for count in found.values()), found

    def test_identifiers_are_references_not_secrets(self):
        for credential in Credential.objects.select_related("system"):
            for text in (credential.identifier, credential.fingerprint, credential.store_path,
                         credential.notes,
                         credential.human_use_evidence, *credential.scopes):
                assert secret_kind(text) is None, (credential.name, text)
            if credential.kind == CredentialKind.API_KEY and credential.system.name in demo.AWS_ACCOUNTS:
                assert re.fullmatch(r"AKIA[A-Z2-7]{16}", credential.identifier)
            if credential.kind == CredentialKind.CERTIFICATE:
                assert re.fullmatch(r"[0-9A-F]{2}(:[0-9A-F]{2}){15}", credential.identifier)
                assert re.fullmatch(r"[0-9A-F]{2}(:[0-9A-F]{2}){31}", credential.fingerprint)
            if credential.store.kind in MANAGED_STORE_KINDS and credential.store.kind == "openbao_kv":
                assert credential.store_path.startswith("secret/data/")
        for workflow in Workflow.objects.all():
            assert secret_kind(workflow.shutdown_procedure) is None
            assert secret_kind(workflow.kill_switch_steps) is None

    def test_every_object_has_its_audit_event_and_the_chain_verifies(self):
        events = AuditEvent.objects.all()
        assert set(events.values_list("actor_kind", "task_id", "actor_label").distinct()) == {
            ("system", "seed_demo", "seed_demo")
        }
        for model, action in ((Person, "person.create"), (Team, "team.create"), (System, "system.create"),
                              (SecretStore, "secretstore.create"), (Workflow, "workflow.create"),
                              (Credential, "credential.create"), (Binding, "binding.create")):
            audited = set(events.filter(action=action).values_list("object_id", flat=True))
            assert audited == {str(pk) for pk in model.objects.values_list("pk", flat=True)}, model
        assert events.filter(action="system.retire").count() == 1
        assert events.filter(action="person.depart").count() == 2
        assert events.filter(action="role.member_add").count() == 2
        assert verify_chain().intact

    def test_personas_roles_and_no_superuser(self, demo_estate):
        def teams_of(username):
            return list(Team.objects.filter(group__user__username=username).values_list("name", flat=True))

        owner = Person.objects.get(username="demo-owner")
        assert teams_of("demo-owner") == ["Payments Platform"]
        assert Workflow.objects.filter(owner=owner).count() >= 4
        owned = Credential.objects.filter(owner=owner)
        assert owned.count() >= 20
        assert owned.exclude(store__kind__in=MANAGED_STORE_KINDS).exists()
        retired = owned.filter(system__lifecycle=SystemLifecycle.RETIRED)
        assert retired.filter(status=CredentialStatus.ACTIVE).exists()
        assert owned.annotate(uses=Count("bindings")).filter(uses__gt=1).exists()
        soon = demo_estate["anchor"] + dt.timedelta(days=30)
        assert owned.filter(kind=CredentialKind.CERTIFICATE, expires_at__lt=soon).exists()
        assert owned.filter(last_rotated_at__lt=demo_estate["anchor"] - dt.timedelta(days=90)).exists()
        assert teams_of("demo-approver") == ["Infrastructure"]
        assert roles.is_auditor(Person.objects.get(username="demo-auditor"))
        assert roles.is_security_admin(Person.objects.get(username="demo-secadmin"))
        assert not Person.objects.filter(is_superuser=True).exists()
        assert not Person.objects.filter(is_staff=True).exists()

    def test_departures_reassign_some_objects_and_orphan_others(self, demo_estate):
        departed = Person.objects.filter(status=PersonStatus.DEPARTED)
        assert sorted(departed.values_list("username", flat=True)) == ["priya.raman", "tomas.lindqvist"]
        assert all(not p.is_active and not p.has_usable_password() for p in departed)
        for model in (System, Workflow, Credential):
            assert not model.objects.filter(owner__in=departed).exists()
        assert Workflow.objects.get(name="warehouse-nightly-load").owner.username == "kenji.watanabe"
        assert Workflow.objects.get(name="aws-iam-key-rotator").owner.username == "helen.carter"
        assert Workflow.objects.filter(owner__isnull=True).count() >= 2
        assert demo_estate["counts"]["objects_reassigned"] >= 10
        assert AuditEvent.objects.filter(action="workflow.orphaned").count() == demo.SEEDED_PROBLEMS[
            "orphaned_workflows"
        ]

    @pytest.mark.parametrize("username", [*(p.username for p in demo_data.PERSONAS), "maria.gonzalez"])
    def test_demo_people_sign_in_with_the_demo_password(self, client, username):
        response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
        assert response.status_code == 302, response.content[:500]
        assert client.session.get("_auth_user_id") == str(Person.objects.get(username=username).pk)

    def test_departed_people_cannot_sign_in(self, client):
        response = client.post(reverse("login"), {"username": "tomas.lindqvist", "password": PASSWORD})
        assert response.status_code != 302
        assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_build_is_deterministic():
    anchor = demo.demo_anchor()
    first = build_and_roll_back(anchor)
    assert not Person.objects.exists()
    # Another build on another day gives the same estate, shifted: every date is relative to the anchor.
    assert build_and_roll_back(anchor - dt.timedelta(days=3)) == first
    # Same estate in every process (no hash-order dependence) and on SQLite and PostgreSQL alike.
    assert first == RECORDED_FINGERPRINT, f"the demo estate changed: record its new fingerprint {first}"


@pytest.mark.django_db
def test_the_command_seeds_once_then_does_nothing(settings, client):
    settings.STEWARD_DEMO_PASSWORD = "a-private-demo-password"
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "Seeded the demo estate" in text
    assert re.search(r"workflows\s+40 \(4 orphaned\)", text), text
    assert "demo-owner, demo-approver, demo-auditor, demo-secadmin" in text
    assert "STEWARD_DEMO_PASSWORD" in text and "a-private-demo-password" not in text
    sign_in = {"username": "demo-owner", "password": "a-private-demo-password"}
    response = client.post(reverse("login"), sign_in)
    assert response.status_code == 302
    events = AuditEvent.objects.count()

    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert again.getvalue().strip() == "demo estate already present"
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_the_command_prints_the_default_password_only(settings, monkeypatch):
    settings.STEWARD_DEMO_PASSWORD = "steward-demo"
    counts = dict.fromkeys(
        ("people", "people_departed", "teams", "systems", "systems_retired", "secret_stores",
         "secret_stores_unmanaged", "workflows", "workflows_orphaned", "credentials", "credentials_orphaned",
         "bindings", "audit_events"),
        1,
    )
    monkeypatch.setattr(demo, "build_demo_estate", lambda *, password: counts)
    monkeypatch.setattr(demo, "seed_demo_capabilities", lambda: [])
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Password: steward-demo (the default" in out.getvalue()


@pytest.mark.django_db
def test_the_command_does_nothing_when_a_demo_owner_exists():
    PersonFactory(username="demo-owner")
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert out.getvalue().strip() == "demo estate already present"
    assert Person.objects.count() == 1 and not Workflow.objects.exists()
    with pytest.raises(demo.DemoEstatePresent):
        demo.build_demo_estate(password=PASSWORD)


@pytest.mark.django_db
def test_refused_in_production(settings):
    settings.STEWARD_ENV = "production"
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo", stdout=StringIO())
    with pytest.raises(ImproperlyConfigured):
        demo.build_demo_estate(password=PASSWORD)
    assert not Person.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_a_failed_seed_leaves_nothing_behind():
    TeamFactory(name="Infrastructure")  # the builder's team_create refuses a duplicate name
    with pytest.raises(CommandError, match="nothing was saved"):
        call_command("seed_demo", stdout=StringIO())
    assert not Person.objects.exists() and not AuditEvent.objects.exists()
    assert Team.objects.count() == 1
