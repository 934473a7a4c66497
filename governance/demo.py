"""The demo estate behind `python manage.py seed_demo`: a realistic, deterministic estate with problems.

Why it exists: a portal that governs workflows is only convincing when there is something to
govern. The estate is built through the write services (so every object has its audit event,
by the system task "seed_demo"), in one transaction, from the fixed lists in
governance.demo_data and random.Random(20261129). Every date is relative to an anchor, today at
00:00 UTC, so "expires within 30 days" is true whenever the command runs.

Estate: 19 people (15 realistic, 2 of them departed, and 4 sign-in personas) in 3 teams, 8
systems (1 retired, 1 third-party), 7 secret stores (3 unmanaged), 40 workflows on 12 platforms,
150 credentials of every kind, 158 bindings.

Seeded problems that governance must catch (counts on an empty database: SEEDED_PROBLEMS, which
tests/governance/test_seed_demo.py checks with its own queries):
- unmanaged_store_credentials 16: secrets in config files, CI/CD variables and a spreadsheet;
- rotation_overdue 13: last rotated more than 90 days ago (12), or longer ago than their own
  30-day maximum age (1);
- certificates_expiring 4: active certificates expiring within 30 days of the anchor;
- certificates_expired 3: certificates past their expiry and still active;
- orphaned_workflows 4, orphaned_credentials 7: their owner departed and no backup manager could
  take them (no team). 2 workflows and 13 credentials passed to a team manager instead;
- retired_system_active_credentials 3: legacy-billing is retired, 3 of its credentials are active;
- reused_credentials 3: svc-shared-ci-deployer and etl_shared (4 workflows each),
  jenkins-payments-agent-ssh (3 workflows);
- wildcard_scope_credentials 4: scopes ["*"] (3) or ["admin:*"] (1); admin_credentials 16;
- human_use_credentials 2: machine credentials with evidence of interactive human use;
- third_party_unreviewed 3: Stripe credentials never reviewed (the fourth was reviewed);
- workflows_without_shutdown 8, workflows_never_drilled 15, workflows_drill_failed 5,
  workflows_drill_stale 6 (last drill passed, over a year ago).
"""

from __future__ import annotations

import datetime as dt
import random
import string
import uuid

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from governance import demo_data as data
from governance import roles
from governance.audit import Actor
from governance.choices import MANAGED_STORE_KINDS, CredentialKind, CredentialStatus, PersonStatus
from governance.demo_approvals import seed_demo_approvals
from governance.demo_attestation import seed_demo_attestation
from governance.demo_discovery import seed_demo_discovery
from governance.models import AuditEvent, Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.services import inventory, people
from governance.services.catalogue import catalogue_load
from governance.services.posture import posture_snapshot_take
from governance.services.sweep import sweep_run

SEED = 20261129
TASK_ID = "seed_demo"
SIGN_IN_PERSONAS = tuple(p.username for p in data.PERSONAS)
PRESENCE_MARKER = "demo-owner"

DEFAULT_ROTATION_DAYS = 90
CERTIFICATE_VALIDITY_DAYS = 365
CERTIFICATE_MAX_AGE_DAYS = 398
EXPIRY_WINDOW_DAYS = 30
STALE_DRILL_DAYS = 365

SEEDED_PROBLEMS = {
    "unmanaged_store_credentials": 16,
    "rotation_overdue": 13,
    "certificates_expiring": 4,
    "certificates_expired": 3,
    "orphaned_workflows": 4,
    "orphaned_credentials": 7,
    "retired_system_active_credentials": 3,
    "reused_credentials": 3,
    "wildcard_scope_credentials": 4,
    "admin_credentials": 16,
    "human_use_credentials": 2,
    "third_party_unreviewed": 3,
    "workflows_without_shutdown": 8,
    "workflows_never_drilled": 15,
    "workflows_drill_failed": 5,
    "workflows_drill_stale": 6,
}

SYSTEM_SPECS = {spec.name: spec for spec in data.SYSTEMS}
AWS_ACCOUNTS = {"aws-prod": "482913570264", "dev-sandbox": "739104826351"}
_AWS_KEY_ALPHABET = string.ascii_uppercase + "234567"
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits


class DemoEstatePresent(Exception):
    """The demo estate exists already; seeding again would duplicate it."""


def demo_anchor(now: dt.datetime | None = None) -> dt.datetime:
    """Today at 00:00 UTC: every demo date is an offset from it."""
    now = now or dt.datetime.now(dt.UTC)
    return dt.datetime.combine(now.astimezone(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)


def demo_estate_present() -> bool:
    return Person.objects.filter(username=PRESENCE_MARKER).exists()


def build_demo_estate(*, password: str, anchor: dt.datetime | None = None) -> dict[str, int]:
    """Build the whole estate in one transaction and return the counts per type."""
    if settings.STEWARD_ENV == "production":
        raise ImproperlyConfigured("The demo estate is never seeded under STEWARD_ENV=production.")
    if not password:
        raise ValueError("The demo accounts need a password (settings.STEWARD_DEMO_PASSWORD).")
    with transaction.atomic():
        if demo_estate_present():
            raise DemoEstatePresent("demo estate already present")
        return _EstateBuilder(anchor or demo_anchor()).build(password)


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


class _EstateBuilder:
    def __init__(self, anchor: dt.datetime):
        self.anchor = anchor
        self.rng = random.Random(SEED)
        self.actor = Actor.system(task_id=TASK_ID, label=TASK_ID)
        self.people: dict[str, Person] = {}
        self.teams: dict[str, Team] = {}
        self.systems: dict[str, System] = {}
        self.stores: dict[str, SecretStore] = {}
        self.credentials: dict[str, Credential] = {}
        self.identifiers: set[tuple[str, str]] = set()
        self.departures = {"reassigned": 0, "orphaned": 0}

    def build(self, password: str) -> dict[str, int]:
        people.role_groups_ensure(actor=self.actor)
        self._people_and_teams()
        self._systems()
        self._stores()
        for flow in data.FLOWS:
            self._workflow(flow)
        for spec in data.SYSTEMS:
            if spec.retire_reason:
                system = self.systems[spec.name]
                inventory.system_retire(actor=self.actor, system=system, reason=spec.retire_reason)
        for spec in data.PEOPLE:
            if spec.departs:
                outcome = people.person_mark_departed(actor=self.actor, person=self.people[spec.username])
                for key, value in outcome.items():
                    self.departures[key] += value
        self._passwords(password)
        return self._counts()

    # People, teams and roles

    def _people_and_teams(self) -> None:
        for spec in (*data.PEOPLE, *data.PERSONAS):
            self.people[spec.username] = people.person_create(
                actor=self.actor, username=spec.username, email=f"{spec.username}@{data.EMAIL_DOMAIN}",
                first_name=spec.first_name, last_name=spec.last_name, job_title=spec.job_title,
            )
        for key, team in data.TEAMS.items():
            members = [self.people[p.username] for p in (*data.PEOPLE, *data.PERSONAS) if p.team == key]
            self.teams[key] = people.team_create(
                actor=self.actor, name=team.name, manager=self.people[team.manager], members=members,
                description=team.description,
            )
        people.role_member_add(actor=self.actor, person=self.people["demo-auditor"], role=roles.AUDITORS)
        people.role_member_add(actor=self.actor, person=self.people["demo-secadmin"], role=roles.SECURITY_ADMINS)

    def _passwords(self, password: str) -> None:
        """Active people and personas sign in with the demo password; departed people cannot.

        One hash for all of them: the accounts share a published password anyway, and hashing
        it once instead of 17 times keeps the seed fast (PBKDF2 is slow on purpose).
        """
        hashed = make_password(password)
        for spec in (*data.PEOPLE, *data.PERSONAS):
            if not spec.departs:
                person = self.people[spec.username]
                person.password = hashed
                person.save(update_fields=["password"])

    # Systems and stores

    def _systems(self) -> None:
        for spec in data.SYSTEMS:
            self.systems[spec.name] = inventory.system_create(actor=self.actor, data={
                "name": spec.name, "description": spec.description, "environment": spec.environment,
                "criticality": spec.criticality, "third_party": spec.third_party, "vendor": spec.vendor,
                "owner": self.people[spec.owner], "team": self.teams[spec.team],
                "hosts": data.certificate_hosts(spec.name),
            })

    def _stores(self) -> None:
        for spec in data.STORES:
            self.stores[spec.name] = inventory.secret_store_create(actor=self.actor, data={
                "name": spec.name, "kind": spec.kind, "address": spec.address,
                "description": spec.description,
                "settings": spec.settings or {}, "credential_env_var": spec.credential_env_var,
            })

    # Workflows, their credentials and bindings

    def _workflow(self, flow: data.Flow) -> None:
        credentials = (*flow.credentials, *data.fleet_credentials(flow.name))
        workflow = inventory.workflow_create(actor=self.actor, data={
            "name": flow.name, "description": flow.description, "kind": flow.kind, "platform": flow.platform,
            "systems": [self.systems[name] for name in flow.systems], "status": flow.status,
            "criticality": flow.criticality,
            "can_provision": "p" in flow.powers, "can_change": "c" in flow.powers,
            "can_rotate": "r" in flow.powers, "can_revoke": "v" in flow.powers,
            **self._shutdown(flow, credentials), **self._drill(flow.drill),
            "owner": self.people[flow.owner], "team": self.teams[flow.team] if flow.team else None,
        })
        for entry in credentials:
            if isinstance(entry, data.Use):
                credential = self.credentials[entry.name]
                scopes = credential.scopes[:1]
            else:
                credential = self._credential(entry, flow)
                scopes = credential.scopes
            inventory.binding_create(actor=self.actor, data={
                "workflow": workflow, "credential": credential, "purpose": entry.purpose,
                "scopes_used": scopes,
            })

    def _shutdown(self, flow: data.Flow, credentials) -> dict[str, str]:
        if not flow.runbook:
            return {"shutdown_procedure": "", "kill_switch_steps": ""}
        names = ", ".join(entry.name for entry in credentials)
        return {
            "shutdown_procedure": data.SHUTDOWN[flow.platform].format(name=flow.name),
            "kill_switch_steps": (
                f"1. Suspend through the kill switch: {names}.\n"
                f"2. Stop every schedule and trigger of {flow.name} on {flow.platform}.\n"
                "3. Check the platform's run history: nothing may start after the switch."
            ),
        }

    def _drill(self, drill: str) -> dict:
        rng, anchor = self.rng, self.anchor
        if drill == "recent":
            return {"last_drilled_at": anchor - _days(rng.randint(5, 60)), "last_drill_result": "passed"}
        if drill == "stale":
            days = rng.randint(STALE_DRILL_DAYS + 35, 800)
            return {"last_drilled_at": anchor - _days(days), "last_drill_result": "passed"}
        if drill == "failed":
            return {"last_drilled_at": anchor - _days(rng.randint(7, 45)), "last_drill_result": "failed"}
        return {"last_drilled_at": None, "last_drill_result": ""}

    def _credential(self, cred: data.Cred, flow: data.Flow) -> Credential:
        system = self.systems[cred.system]
        store = self.stores[cred.store]
        team_slug = data.TEAMS[flow.team].slug if flow.team else "adhoc"
        identifier, fingerprint = self._identifier(cred, team_slug)
        system_spec = SYSTEM_SPECS[cred.system]
        values = {
            "name": cred.name, "kind": cred.kind, "system": system, "identifier": identifier,
            "fingerprint": fingerprint, "store": store,
            "store_path": self._store_path(cred, store, team_slug, identifier),
            "store_version": str(self.rng.randint(1, 14)) if store.kind == "openbao_kv" else "",
            "scopes": list(cred.scopes) or data.default_scopes(cred),
            "privilege_level": cred.privilege, "status": cred.status,
            "owner": self.people[flow.owner], "team": self.teams[flow.team] if flow.team else None,
            "human_use_detected": "human-use" in cred.problems,
            "human_use_evidence": data.HUMAN_USE_EVIDENCE[cred.name] if "human-use" in cred.problems else "",
            "third_party_reviewed_at": (
                self.anchor - _days(self.rng.randint(20, 150))
                if system_spec.third_party and "unreviewed" not in cred.problems else None
            ),
            "notes": (
                f"Found in {store.name} during the secrets inventory; not yet moved to a managed store."
                if store.kind not in MANAGED_STORE_KINDS else ""
            ),
            **self._dates(cred, retired_system=bool(system_spec.retire_reason)),
        }
        credential = inventory.credential_create(actor=self.actor, data=values)
        self.credentials[cred.name] = credential
        return credential

    def _dates(self, cred: data.Cred, *, retired_system: bool) -> dict:
        rng, anchor = self.rng, self.anchor
        expires = None
        if cred.kind == CredentialKind.CERTIFICATE:
            if "expiring" in cred.problems:
                expires = anchor + _days(rng.randint(3, EXPIRY_WINDOW_DAYS - 3))
            elif "expired" in cred.problems:
                expires = anchor - _days(rng.randint(3, 30))
            else:
                expires = anchor + _days(rng.randint(60, 330))
            last_rotated = issued = expires - _days(CERTIFICATE_VALIDITY_DAYS)
            max_age = CERTIFICATE_MAX_AGE_DAYS
        else:
            if "overdue" in cred.problems:
                max_age, age = rng.choice((None, DEFAULT_ROTATION_DAYS)), rng.randint(120, 720)
            elif "overdue-policy" in cred.problems:
                max_age, age = 30, rng.randint(45, 80)
            else:
                max_age = rng.choice((None, None, None, 30, 90, 180, 365))
                age = rng.randint(2, 25 if max_age == 30 else 60)
            last_rotated = anchor - dt.timedelta(days=age, hours=rng.randint(0, 23))
            issued = last_rotated - _days(rng.randint(0, 700))
            if cred.kind == CredentialKind.ACCESS_TOKEN:
                expires = anchor + _days(rng.randint(45, 365))
        last_used = None
        if cred.status == CredentialStatus.ACTIVE:
            if retired_system:
                last_used = anchor - _days(rng.randint(20, 90))
            elif rng.random() > 0.1:
                last_used = anchor - dt.timedelta(hours=rng.randint(1, 96))
        return {
            "issued_at": issued, "last_rotated_at": last_rotated, "expires_at": expires,
            "rotation_max_age_days": max_age, "last_used_at": last_used,
        }

    def _identifier(self, cred: data.Cred, team_slug: str) -> tuple[str, str]:
        """A realistic non-secret identifier (and fingerprint), unique per system."""
        while True:
            identifier, fingerprint = self._new_identifier(cred, team_slug)
            if (cred.system, identifier) not in self.identifiers:
                self.identifiers.add((cred.system, identifier))
                return identifier, fingerprint

    def _new_identifier(self, cred: data.Cred, team_slug: str) -> tuple[str, str]:
        rng, kind, system = self.rng, cred.kind, cred.system
        if kind == CredentialKind.CERTIFICATE:
            return _hex_colons(rng, 16), _hex_colons(rng, 32)
        if kind == CredentialKind.SSH_KEY:
            # MD5 colon form, as older OpenSSH prints fingerprints.
            fingerprint = "MD5:" + _hex_colons(rng, 16).lower()
            return fingerprint, fingerprint
        if kind == CredentialKind.API_KEY:
            if system in AWS_ACCOUNTS:
                return "AKIA" + "".join(rng.choice(_AWS_KEY_ALPHABET) for _ in range(16)), ""
            return _uuid(rng), ""
        if kind == CredentialKind.SERVICE_ACCOUNT:
            if system in AWS_ACCOUNTS:
                return f"arn:aws:iam::{AWS_ACCOUNTS[system]}:role/{cred.name}", ""
            if system == "k8s-staging":
                namespace = cred.name.removeprefix("k8s-staging-").removesuffix("-deployer")
                namespace = namespace if namespace in data.STAGING_NAMESPACES else team_slug
                return f"system:serviceaccount:staging-{namespace}:{cred.name}", ""
            if "approle" in cred.name:
                return f"auth/approle/role/{cred.name}", ""
            return cred.name, ""
        if kind == CredentialKind.OAUTH_CLIENT:
            if system == "payments-api":
                return "0oa" + "".join(rng.choice(_LOWER_ALNUM) for _ in range(17)), ""
            if system == "stripe":
                return "ca_" + "".join(rng.choice(_ALNUM) for _ in range(16)), ""
            return _uuid(rng), ""
        if kind == CredentialKind.ACCESS_TOKEN:
            return f"tok-{rng.getrandbits(64):016x}", ""
        return cred.name.replace("-", "_"), ""  # a password: the database or application account name

    def _store_path(self, cred: data.Cred, store: SecretStore, team_slug: str, identifier: str) -> str:
        if cred.path:
            return cred.path
        if store.kind == "openbao_kv":
            return f"secret/data/{team_slug}/{cred.name}"
        if store.kind == "openbao_pki":
            return "pki/cert/" + identifier.replace(":", "-").lower()
        if store.kind == "aws_secrets_manager":
            return f"prod/{team_slug}/{cred.name}"
        if store.kind == "kubernetes_secret":
            return f"staging-{team_slug}/{cred.name}"
        raise ValueError(f"{cred.name}: give the path of a credential in the unmanaged store {store.name}.")

    def _counts(self) -> dict[str, int]:
        return {
            "people": Person.objects.count(),
            "people_departed": Person.objects.filter(status=PersonStatus.DEPARTED).count(),
            "teams": Team.objects.count(),
            "systems": System.objects.count(),
            "systems_retired": System.objects.filter(retired_at__isnull=False).count(),
            "secret_stores": SecretStore.objects.count(),
            "secret_stores_unmanaged": SecretStore.objects.exclude(kind__in=MANAGED_STORE_KINDS).count(),
            "workflows": Workflow.objects.count(),
            "workflows_orphaned": Workflow.objects.filter(owner__isnull=True).count(),
            "credentials": Credential.objects.count(),
            "credentials_orphaned": Credential.objects.filter(owner__isnull=True).count(),
            "bindings": Binding.objects.count(),
            "objects_reassigned": self.departures["reassigned"],
            "audit_events": AuditEvent.objects.count(),
        }


def _hex_colons(rng: random.Random, n: int) -> str:
    return ":".join(f"{rng.getrandbits(8):02X}" for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def seed_demo_capabilities() -> list[str]:
    """The catalogue, approval history, attestation campaigns, then a sweep so findings exist."""
    now = demo_anchor()
    catalogue = catalogue_load(actor=Actor.system(task_id="seed_demo", label="seed_demo"))
    approvals = seed_demo_approvals(now=now)
    attestation = seed_demo_attestation(now=timezone.now())
    discovery = seed_demo_discovery()  # before the sweep, so that its findings open with the rest
    run = sweep_run(trigger="seed_demo")
    posture_snapshot_take()
    opened = sum(c.get("opened", 0) for c in run.counts.values() if isinstance(c, dict))
    return [
        f"{'catalogue':<15} version {catalogue.version.version}",
        f"{'approvals':<15} " + ", ".join(f"{v} {k}" for k, v in approvals.items()),
        f"{'attestation':<15} " + ", ".join(f"{v} {k}" for k, v in attestation.items()),
        f"{'discovery':<15} {discovery['items']} items from {discovery['source']} ({discovery['workflows']} "
        f"workflows, {discovery['hard_coded_secrets']} hard-coded secrets; run {discovery['status']})",
        f"{'sweep':<15} {opened} findings opened ({run.status})",
    ]
