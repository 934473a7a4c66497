"""Approval policies and a realistic history of approval requests for the demo estate.

Why it exists: the approval queue is the portal's daily work for approvers; an empty one shows
nothing. seed_demo_approvals() runs after governance.demo has built the estate and, through the
approval services (separation of duties included), files requests as the people who would ask
for them and decides them as the people who would decide: pending ones (several in
demo-approver's queue, one that demo-approver filed, one on an object demo-approver owns),
approved and executed, rejected, expired, and one that failed because its target changed.

Executed changes are chosen so that the seeded problems (governance.demo.SEEDED_PROBLEMS) stay
exactly as counted: new credentials are read/write, in a managed store, freshly rotated and
bound; no workflow is created; scope changes add no wildcard and no admin privilege.
Notifications are suppressed: seeding history emails nobody.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import Group
from django.db import transaction

from governance import roles
from governance.audit import Actor
from governance.models import Credential, Person, SecretStore, System, Team, Workflow
from governance.models.approvals import ApprovalAction as A
from governance.models.approvals import ApprovalDecision, ApprovalPolicy, ApprovalRequest, ApprovalStatus
from governance.services import approval_policies, approvals, approvals_sweep, inventory
from governance.services.approvals_notify import notifications_suppressed

TASK_ID = "seed_demo"
STANDARD, PRIVILEGED, RISK, PAYMENTS = ("Standard access change", "Privileged access", "Risk acceptance",
                                        "Payments production")
H = dt.timedelta(hours=1)


class _Seeder:
    def __init__(self, now: dt.datetime):
        self.now = now
        self.system_actor = Actor.system(task_id=TASK_ID, label=TASK_ID)
        self.timeline: dict[int, list[float]] = {}

    # Lookups by name: the estate of governance.demo

    def person(self, username: str) -> Person:
        return Person.objects.get(username=username)

    def actor(self, username: str) -> Actor:
        return Actor.for_user(self.person(username))

    def workflow(self, name: str) -> Workflow:
        return Workflow.objects.get(name=name)

    def credential(self, name: str) -> Credential:
        return Credential.objects.get(name=name)

    def pk(self, model, name: str) -> int:
        return model.objects.get(name=name).pk

    # Policies

    def policies(self) -> None:
        infra = Team.objects.get(name="Infrastructure").group
        payments = Team.objects.get(name="Payments Platform").group
        admins = Group.objects.get(name=roles.SECURITY_ADMINS)
        specs = (
            (STANDARD, "Everyday access changes: new credentials, transfers, retirements.", [infra], 1, 72, 24,
             admins, 48, [A.PROVISION_CREDENTIAL, A.REGISTER_WORKFLOW, A.OWNERSHIP_TRANSFER, A.RETIREMENT]),
            (PRIVILEGED, "More privilege and reactivation after a kill switch: two people, one of them may be "
                         "a security admin.", [infra, admins], 2, 48, 12, admins, 24,
             [A.PRIVILEGED_SCOPE_CHANGE, A.REACTIVATION]),
            (RISK, "Accepting the risk of a finding, for a limited time.", [admins], 1, 168, 48, None, None,
             [A.RISK_ACCEPTANCE]),
        )
        for name, description, groups, n, expiry, remind, escalation, after, actions in specs:
            approval_policies.approval_policy_create(actor=self.system_actor, data={
                "name": name, "description": description, "approver_groups": groups, "required_approvals": n,
                "expiry_hours": expiry, "reminder_before_hours": remind, "escalation_group": escalation,
                "escalation_after_hours": after, "actions": actions, "default_for_actions": actions,
            })
        payments_policy = approval_policies.approval_policy_create(actor=self.system_actor, data={
            "name": PAYMENTS, "description": "Production payments workflows: Infrastructure and Payments "
                                            "both sign off (two people).",
            "approver_groups": [infra, payments], "required_approvals": 2, "expiry_hours": 72,
            "reminder_before_hours": 24, "actions": [A.PROVISION_CREDENTIAL, A.PRIVILEGED_SCOPE_CHANGE,
                                                     A.RETIREMENT], "default_for_actions": [],
        })
        for name in ("payments-api-deploy", "payments-db-migrations"):
            inventory.workflow_update(actor=self.system_actor, workflow=self.workflow(name),
                                      data={"approval_policy": payments_policy})

    # Requests

    def file(self, requester: str, action: str, target, payload: dict, justification: str, *, filed_ago: float,
             ticket: dict | None = None) -> ApprovalRequest:
        request = approvals.approval_request_file(actor=self.actor(requester), action=action, target=target,
                                                  payload=payload, justification=justification, ticket=ticket)
        self.timeline[request.pk] = [filed_ago, 2.0]
        return request

    def decide(self, request: ApprovalRequest, *moves: tuple[str, str, str], after: float = 2) -> None:
        """Decide as each (person, "approve" | "reject", comment); backdate() spaces them `after` hours."""
        for username, decision, comment in moves:
            if decision == "approve":
                approvals.approval_request_approve(actor=self.actor(username), request_id=request.pk,
                                                   comment=comment)
            else:
                approvals.approval_request_reject(actor=self.actor(username), request_id=request.pk, reason=comment)
        self.timeline[request.pk][1] = after

    def backdate(self) -> None:
        """Give every request its place in time: filed hours ago, decisions `after` hours apart."""
        for request in ApprovalRequest.objects.filter(pk__in=self.timeline).select_related("policy"):
            filed_ago, after = self.timeline[request.pk]
            created = self.now - filed_ago * H
            decisions = list(request.decisions.order_by("pk"))
            for index, decision in enumerate(decisions, start=1):
                ApprovalDecision.objects.filter(pk=decision.pk).update(decided_at=created + index * after * H)
            last = created + len(decisions) * after * H
            ApprovalRequest.objects.filter(pk=request.pk).update(
                created_at=created, expires_at=created + request.policy.expiry_hours * H,
                decided_at=last if request.decided_at else None, executed_at=last if request.executed_at else None)

    def new_credential(self, name: str, system: str, identifier: str, *, kind: str = "api_key",
                       store: str = "openbao-prod", path: str = "", scopes=(), privilege: str = "read",
                       purpose: str) -> dict:
        store_obj = SecretStore.objects.get(name=store)
        return {"name": name, "kind": kind, "system": self.pk(System, system), "identifier": identifier,
                "store": store_obj.pk, "store_path": path or f"secret/data/{name}", "scopes": list(scopes),
                "privilege_level": privilege, "purpose": purpose}

    def added_scopes(self, credential: str, *extra: str, privilege: str | None = None) -> dict:
        obj = self.credential(credential)
        return {"scopes": [*obj.scopes, *extra], "privilege_level": privilege or obj.privilege_level}

    def pending(self) -> None:
        self.file("demo-owner", A.PROVISION_CREDENTIAL, self.workflow("fraud-score-sync"), self.new_credential(
            "fraud-scores-callback-key", "payments-api", "5c1e9a7b-3d2f-4e8a-9b61-0f4d2c8e7a13",
            path="secret/data/payments/fraud-scores-callback-key", scopes=["scores:write"], privilege="write",
            purpose="sign the score callbacks"), "The payments API now verifies signed score callbacks; the "
            "sync needs its own signing key instead of reusing the push key.", filed_ago=5,
            ticket={"system": "Jira", "key": "PAY-2291", "url": "https://jira.example.com/browse/PAY-2291"})
        self.file("demo-owner", A.OWNERSHIP_TRANSFER, self.workflow("legacy-billing-export"),
                  {"new_owner": self.person("maria.gonzalez").pk},
                  "I am moving to the checkout squad; María keeps the billing archive until it is retired.",
                  filed_ago=50)
        request = self.file("sofia.rossi", A.PRIVILEGED_SCOPE_CHANGE, self.credential("svc-dbt-prod"),
                            self.added_scopes("svc-dbt-prod", "warehouse:grant", privilege="admin"),
                            "dbt grants must be applied by the build itself since the marts moved to "
                            "per-team roles.", filed_ago=20,
                            ticket={"system": "Jira", "key": "DATA-871", "url": ""})
        self.decide(request, ("helen.carter", "approve", "Fine from the platform side; limited to dbt roles."))
        self.file("fatima.haddad", A.RETIREMENT, self.workflow("k8s-staging-smoke-tests"), {},
                  "Replaced by the synthetic checks in the staging deploy pipeline.", filed_ago=30)
        self.file("helen.carter", A.REACTIVATION, self.workflow("cloud-cost-advisor-agent"), {},
                  "Its recommendations were reviewed: it only reads Cost Explorer. Bring it back.", filed_ago=8)
        self.file("james.whitaker", A.REGISTER_WORKFLOW, None, {
            "name": "payments-chargeback-sync", "description": "Pulls Stripe disputes into the ledger hourly.",
            "kind": "scheduled_job", "platform": "Jenkins", "criticality": "high",
            "systems": [self.pk(System, "stripe"), self.pk(System, "payments-db")],
            "team": Team.objects.get(name="Payments Platform").pk,
            "shutdown_procedure": "Disable the Jenkins job payments-chargeback-sync.",
            "kill_switch_steps": "1. Suspend its Stripe key.\n2. Disable the job.",
        }, "Disputes are copied by hand today; finance wants them in the ledger the same hour.", filed_ago=3)
        self.file("oliver.bennett", A.PROVISION_CREDENTIAL, self.workflow("infra-config-backup"), self.new_credential(
            "backup-restore-verifier", "aws-prod", "AKIAQ4NBX7MZ2RWKD3LP", store="aws-secrets-prod",
            path="prod/infra/backup-restore-verifier", scopes=["s3:GetObject"],
            purpose="restore-test last night's backup"), "Weekly restore tests need a read-only key.", filed_ago=12)
        self.file("demo-owner", A.PRIVILEGED_SCOPE_CHANGE, self.credential("payments-ecr-push"),
                  self.added_scopes("payments-ecr-push", "ecr:BatchDeleteImage"),
                  "Release pipeline should prune untagged images after each deploy.", filed_ago=2)
        self.file("demo-approver", A.OWNERSHIP_TRANSFER, self.workflow("dns-records-sync"),
                  {"new_owner": self.person("david.kim").pk},
                  "David leads the DNS migration; he should own the sync.", filed_ago=28)

    def executed(self) -> None:
        request = self.file("demo-owner", A.PROVISION_CREDENTIAL, self.workflow("payments-api-deploy"),
                            self.new_credential("payments-sbom-upload", "payments-api",
                                                "9e2b4c61-7a3d-4f5e-8c19-2d6b0a4e3f77",
                                                path="secret/data/payments/payments-sbom-upload",
                                                scopes=["artifacts:write"], privilege="write",
                                                purpose="upload the SBOM of each release"),
                            "Supply-chain policy: every release publishes its SBOM.", filed_ago=96,
                            ticket={"system": "Jira", "key": "SEC-412", "url": "https://jira.example.com/browse/SEC-412"})
        self.decide(request, ("helen.carter", "approve", "Write to the artefact store only: fine."),
                    ("james.whitaker", "approve", "Agreed."))  # not María: she manages the backup team
        request = self.file("grace.obi", A.OWNERSHIP_TRANSFER, self.workflow("finance-kpi-snapshot"),
                            {"new_owner": self.person("sofia.rossi").pk},
                            "Sofia runs the finance marts now.", filed_ago=144)
        self.decide(request, ("david.kim", "approve", ""))
        request = self.file("grace.obi", A.PROVISION_CREDENTIAL, self.workflow("customer-360-refresh"),
                            self.new_credential("svc-c360-export", "analytics-warehouse", "svc-c360-export",
                                                kind="service_account", path="secret/data/data/svc-c360-export",
                                                scopes=["marts:read"], purpose="export the mart to the CRM"),
                            "The CRM sync reads the mart with its own account, not the team's.", filed_ago=70)
        self.decide(request, ("demo-approver", "approve", "Read-only on the mart: approved."), after=5)
        request = self.file("oliver.bennett", A.PRIVILEGED_SCOPE_CHANGE, self.credential("staging-pki-approle"),
                            self.added_scopes("staging-pki-approle", "pki:revoke"),
                            "The issuer must revoke certificates of deleted staging services.", filed_ago=75)
        self.decide(request, ("demo-approver", "approve", "Staging PKI only."),
                    ("demo-secadmin", "approve", "OK, revocation is audited by OpenBao."))
        request = self.file("oliver.bennett", A.RETIREMENT, self.workflow("runner-autoscaler"), {},
                            "GitLab's own autoscaler replaces it from this sprint.", filed_ago=50)
        self.decide(request, ("demo-approver", "approve", ""), after=20)
        request = self.file("lukas.schneider", A.OWNERSHIP_TRANSFER, self.credential("checkout-sentry-release"),
                            {"new_owner": self.person("james.whitaker").pk},
                            "James owns release tooling now.", filed_ago=120)
        self.decide(request, ("fatima.haddad", "approve", ""))

    def rejected(self) -> None:
        request = self.file("maria.gonzalez", A.PRIVILEGED_SCOPE_CHANGE, self.credential("stripe-connect-oauth"),
                            {"scopes": ["*"], "privilege_level": "admin"},
                            "The relay keeps failing on new webhook types; give it everything.", filed_ago=60)
        self.decide(request, ("demo-approver", "reject", "A wildcard admin grant on the Stripe account is not "
                                                          "least privilege: ask for the event types you need."))
        request = self.file("lukas.schneider", A.REGISTER_WORKFLOW, None, {
            "name": "competitor-price-scraper", "kind": "rpa_bot", "platform": "UiPath", "criticality": "low",
            "team": Team.objects.get(name="Payments Platform").pk,
        }, "Marketing asked for daily competitor prices.", filed_ago=200)
        self.decide(request, ("helen.carter", "reject", "Scraping third-party sites needs legal review first."))
        request = self.file("demo-owner", A.PROVISION_CREDENTIAL, self.workflow("refund-assistant-agent"),
                            self.new_credential("refund-agent-full-refunds", "stripe", "rk-agent-full-refunds",
                                                path="secret/data/payments/refund-agent-full-refunds",
                                                scopes=["refunds:write"], privilege="write",
                                                purpose="issue refunds above the agent's limit"),
                            "Support wants the agent to handle large refunds too.", filed_ago=30)
        self.decide(request, ("demo-approver", "reject", "Refunds above the limit need a human in the loop; "
                                                          "design the hand-off first."))
        request = self.file("james.whitaker", A.RETIREMENT, self.workflow("ledger-nightly-close"), {},
                            "The new ledger closes itself.", filed_ago=100)
        self.decide(request, ("david.kim", "reject", "Still needed for month-end close until the new ledger "
                                                      "passes audit."))

    def expired(self) -> list[int]:
        filed = [
            self.file("lukas.schneider", A.OWNERSHIP_TRANSFER, self.workflow("checkout-web-release"),
                      {"new_owner": self.person("maria.gonzalez").pk}, "Handing over before parental leave.",
                      filed_ago=9 * 24),
            self.file("sofia.rossi", A.PROVISION_CREDENTIAL, self.workflow("kafka-cdc-connector"),
                      self.new_credential("kafka-connect-metrics", "analytics-warehouse", "kafka-connect-metrics",
                                          kind="access_token", path="secret/data/data/kafka-connect-metrics",
                                          scopes=["metrics:read"], purpose="export connector metrics"),
                      "Connector lag dashboards.", filed_ago=6 * 24),
            self.file("fatima.haddad", A.RETIREMENT, self.workflow("os-patching-weekly"), {},
                      "SSM patch manager could replace it.", filed_ago=12 * 24),
        ]
        return [request.pk for request in filed]

    def failed(self) -> None:
        """Two scope changes of one credential race: the first executed makes the second stale, so it fails."""
        request = self.file("sofia.rossi", A.PRIVILEGED_SCOPE_CHANGE, self.credential("svc-kafka-connect"),
                            self.added_scopes("svc-kafka-connect", "topics:create"),
                            "New CDC tables need their topics created by the connector.", filed_ago=26)
        metrics = self.file("sofia.rossi", A.PRIVILEGED_SCOPE_CHANGE, self.credential("svc-kafka-connect"),
                            self.added_scopes("svc-kafka-connect", "metrics:read"),
                            "Connector lag dashboards read the connector's metrics.", filed_ago=25)
        self.decide(metrics, ("demo-approver", "approve", ""), ("demo-secadmin", "approve", ""))
        self.decide(request, ("demo-approver", "approve", ""), ("demo-secadmin", "approve", ""))


def seed_demo_approvals(*, now: dt.datetime) -> dict[str, int]:
    """Create the demo's approval policies and requests (once: nothing when the policies exist)."""
    with transaction.atomic(), notifications_suppressed():
        if not ApprovalPolicy.objects.filter(name=STANDARD).exists():
            seeder = _Seeder(now)
            seeder.policies()
            seeder.pending()
            seeder.executed()
            seeder.rejected()
            expired = seeder.expired()
            seeder.failed()
            seeder.backdate()
            approvals_sweep.approval_requests_sweep(now=now)
            for request in ApprovalRequest.objects.filter(pk__in=expired):
                ApprovalRequest.objects.filter(pk=request.pk).update(decided_at=request.expires_at)
        counts = {"approval_policies": ApprovalPolicy.objects.count(),
                  "approval_requests": ApprovalRequest.objects.count()}
        for status in ApprovalStatus.values:
            counts[f"approval_requests_{status}"] = ApprovalRequest.objects.filter(status=status).count()
        return counts
