"""The API's permission matrix: every endpoint and method, for every persona (people with a session
and integrations with a token), in API_RULES; tests/governance/api/test_api_matrix.py runs it and
fails for an endpoint without a rule. RULES (GET only, people only) feeds the portal-wide matrix.

Objects belong to the owner persona's team; the integrations are the owner's (team Payments), so
they act with the owner's rights, narrowed by their scopes.
"""

import datetime as dt

from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone

from tests.matrix.notifications import owner_notification

SESSION = ("owner", "backup_owner", "approver", "auditor", "secadmin", "outsider")
TOKENS = ("int_reader", "int_filer", "int_decider", "int_admin")
API_PERSONAS = ("anonymous", *SESSION, *TOKENS)
SCOPES = {"int_reader": ["read"], "int_filer": ["read", "file_requests"], "int_decider": ["read", "decide_requests"],
          "int_admin": ["admin"]}


def rule(owner, backup_owner, approver, auditor, secadmin, outsider, *, tokens=None, **per_token):
    """Expected statuses. Tokens act as the owner: by default they get what the owner gets."""
    expected = {"anonymous": 401, "owner": owner, "backup_owner": backup_owner, "approver": approver,
                "auditor": auditor, "secadmin": secadmin, "outsider": outsider}
    for token in TOKENS:
        expected[token] = per_token.get(token, owner if tokens is None else tokens)
    return expected


def write(ok, *, scope, auditor=403, outsider=404, approver=404, backup_owner=None, secadmin=None, owner=None):
    """A write on the owner team's object: the owner, team and admins may; tokens need the scope."""
    owner = ok if owner is None else owner
    tokens = {t: (owner if scope in SCOPES[t] or "admin" in SCOPES[t] else 403) for t in TOKENS}
    return rule(owner, ok if backup_owner is None else backup_owner, approver, auditor,
                ok if secadmin is None else secadmin, outsider, **tokens)


def admin_only(ok, *, visible_to_owner=True):
    """Security admins only; others see the object (403) or not (404); tokens (owner) are refused."""
    seen = 403 if visible_to_owner else 404
    return rule(seen, seen, 404 if visible_to_owner else 403, 403, ok, 404 if visible_to_owner else 403,
                tokens=403)


EVERYONE = rule(200, 200, 200, 200, 200, 200)
OWN = rule(200, 200, 404, 200, 200, 404)
READERS = rule(404, 404, 404, 200, 200, 404)


def api_objects(estate, personas):
    """Everything the matrix's URLs and bodies refer to, built once per test."""
    if "_api" in estate:
        return estate["_api"]
    from governance.audit import Actor
    from governance.models.approvals import ApprovalPolicy
    from governance.models.integrations import DeliveryStatus, WebhookDelivery
    from governance.models.provisioning import CredentialProvisioning, ProvisioningStatus
    from governance.services.approvals import approval_request_file
    from governance.services.catalogue import catalogue_load
    from reports.models import ReportJob
    from reports.services import report_job_create
    from tests.factories import CredentialFactory
    from tests.factories_approvals import make_policy
    from tests.factories_attestation import item_for, open_campaign
    from tests.factories_checks import FindingFactory
    from tests.factories_integrations import make_endpoint, make_integration

    made = {}
    tokens = {}
    for persona, scopes in SCOPES.items():
        integration, token = make_integration(owner=personas.owner, scopes=scopes, name=f"matrix-{persona}",
                                              team=personas.team)
        tokens[persona] = token
        made.setdefault("integration", integration)
    made["tokens"] = tokens
    made["token"] = made["integration"].tokens.get()
    with override_settings(STEWARD_WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"]):
        made["endpoint"], _ = make_endpoint(owner=personas.owner, team=personas.team,
                                            url="http://127.0.0.1:9/hook", name="matrix-endpoint")
    made["delivery"] = WebhookDelivery.objects.create(
        endpoint=made["endpoint"], message_id="msg_matrix", event_type="approval_request.filed",
        payload={"type": "approval_request.filed"}, status=DeliveryStatus.FAILED, completed_at=timezone.now(),
        attempt_count=1)
    # a second credential: the pending request makes it visible to the approver (the estate's stay hidden)
    made["spare_credential"] = CredentialFactory(name="spare-key", system=estate["system"], owner=personas.owner,
                                                 team=personas.team)
    if not ApprovalPolicy.objects.filter(name="Matrix policy").exists():  # tests/matrix/approvals.py's too
        make_policy(name="Matrix policy", groups=[personas.other_team.group])
    made["approval"] = approval_request_file(
        actor=Actor.for_user(personas.owner), action="ownership_transfer", target=made["spare_credential"],
        payload={"new_owner": personas.backup_owner.pk}, justification="matrix")
    # a credential Steward provisioned (the estate's were registered): its provisioning status is readable
    made["provisioned_credential"] = CredentialFactory(name="provisioned-key", system=estate["system"],
                                                       owner=personas.owner, team=personas.team)
    CredentialProvisioning.objects.create(credential=made["provisioned_credential"], connector_kind="openbao_kv",
                                          status=ProvisioningStatus.SUCCEEDED, finished_at=timezone.now())
    catalogue_load(actor=Actor.system(task_id="matrix"))
    made["finding"] = FindingFactory.for_object(estate["credential"], code="least-privilege")
    campaign = open_campaign(personas)
    made["item"] = item_for(campaign, estate["workflow"])
    job = report_job_create(actor=Actor.for_user(personas.owner), kind="inventory",
                            parameters={"scope": f"team:{personas.team.name}"}, enqueue=False)
    job.status, job.sha256, job.size, job.finished_at = "succeeded", "0" * 64, 4, timezone.now()
    job.file.save("matrix-report.pdf", ContentFile(b"%PDF"), save=False)
    job.save()
    made["report"] = ReportJob.objects.get(pk=job.pk)
    estate["_api"] = made
    return made


def _pk(name):
    return lambda estate, personas: {"pk": api_objects(estate, personas)[name].pk}


KWARGS = {
    "api_integration": _pk("integration"),
    "api_token": _pk("token"),
    "api_endpoint": _pk("endpoint"),
    "api_delivery": _pk("delivery"),
    "api_approval": _pk("approval"),
    "api_finding": _pk("finding"),
    "api_item": _pk("item"),
    "api_report": _pk("report"),
    "api_provisioned": _pk("provisioned_credential"),
}


def _owner_notification(estate, personas):
    return {"pk": owner_notification(estate, personas).pk}


KWARGS["api_notification"] = _owner_notification


def _in_a_month():
    return (timezone.now() + dt.timedelta(days=30)).isoformat()


# Bodies of the writes (built per request; every request runs in a transaction rolled back after it).
BODIES = {
    ("v1:system-list", "post"): lambda e, p: {"name": "api-new-system"},
    ("v1:system-detail", "patch"): lambda e, p: {"description": "changed by the matrix"},
    ("v1:system-detail", "put"): lambda e, p: {"name": e["system"].name, "description": "put by the matrix"},
    ("v1:system-retire", "post"): lambda e, p: {"reason": "matrix"},
    ("v1:system-hosts", "post"): lambda e, p: {"hosts": ["matrix.example.com"], "reason": "matrix"},
    ("v1:system-transition", "post"): lambda e, p: {"transition": "begin_retirement", "reason": "matrix"},
    ("v1:credential-transition", "post"): lambda e, p: {"transition": "activate"},
    ("v1:workflow-transition", "post"): lambda e, p: {"transition": "activate"},
    ("v1:secretstore-list", "post"): lambda e, p: {"name": "api-new-store", "kind": "openbao_kv"},
    ("v1:secretstore-detail", "patch"): lambda e, p: {"description": "changed"},
    ("v1:secretstore-detail", "put"): lambda e, p: {"name": e["store"].name, "kind": e["store"].kind,
                                                    "description": "put"},
    ("v1:credential-list", "post"): lambda e, p: {"name": "api-new-key", "kind": "api_key",
                                                  "system": e["system"].pk, "identifier": "api-new-key-id"},
    ("v1:credential-detail", "patch"): lambda e, p: {"notes": "changed"},
    ("v1:credential-detail", "put"): lambda e, p: {
        "name": e["credential"].name, "kind": e["credential"].kind, "system": e["credential"].system_id,
        "identifier": e["credential"].identifier, "notes": "put"},
    ("v1:workflow-list", "post"): lambda e, p: {"name": "api-new-flow", "kind": "scheduled_job",
                                                "platform": "Airflow"},
    ("v1:workflow-detail", "patch"): lambda e, p: {"description": "changed"},
    ("v1:workflow-detail", "put"): lambda e, p: {"name": e["workflow"].name, "kind": e["workflow"].kind,
                                                 "platform": e["workflow"].platform, "description": "put"},
    ("v1:workflow-retire", "post"): lambda e, p: {"reason": "matrix"},
    ("v1:binding-list", "post"): lambda e, p: {"workflow": e["workflow"].pk,
                                               "credential": api_objects(e, p)["spare_credential"].pk,
                                               "purpose": "matrix"},
    ("v1:integration-list", "post"): lambda e, p: {"name": "api-new-integration", "owner": p.owner.pk,
                                                   "scopes": ["read"]},
    ("v1:integration-detail", "patch"): lambda e, p: {"description": "changed"},
    ("v1:integration-rotate-token", "post"): lambda e, p: {"overlap_hours": 1},
    ("v1:integration-disable", "post"): lambda e, p: {"reason": "matrix"},
    ("v1:webhookendpoint-list", "post"): lambda e, p: {"name": "api-new-endpoint", "url": "http://127.0.0.1:9/n",
                                                       "event_types": ["finding.opened"], "owner": p.owner.pk},
    ("v1:webhookendpoint-detail", "patch"): lambda e, p: {"description": "changed"},
    ("v1:webhookendpoint-rotate-secret", "post"): lambda e, p: {"overlap_hours": 1},
    ("v1:approvalrequest-list", "post"): lambda e, p: {"action": "retirement", "target_type": "governance.workflow",
                                                       "target_id": e["workflow"].pk, "justification": "matrix"},
    ("v1:approvalrequest-approve", "post"): lambda e, p: {"comment": "ok"},
    ("v1:approvalrequest-reject", "post"): lambda e, p: {"reason": "no"},
    ("v1:approvalrequest-ticket", "post"): lambda e, p: {"system": "jira", "key": "SEC-1"},
    ("v1:finding-acknowledge", "post"): lambda e, p: {"comment": "on it"},
    ("v1:finding-request-risk-acceptance", "post"): lambda e, p: {"expires_at": _in_a_month(),
                                                                  "justification": "compensating control"},
    ("v1:finding-ticket", "post"): lambda e, p: {"system": "jira", "key": "SEC-2"},
    ("v1:attestationitem-answer", "post"): lambda e, p: {"answer": "confirm"},
    ("v1:attestationitem-ticket", "post"): lambda e, p: {"system": "servicenow", "key": "RITM0001"},
    ("v1:reportjob-list", "post"): lambda e, p: {"kind": "inventory",
                                                 "parameters": {"scope": f"team:{p.team.name}"}},
}

CREATE_OWNED = write(201, scope="admin", outsider=201, approver=201)
CHANGE_OWNED = write(200, scope="admin")

# url name -> {method: (kwargs key, expected per persona)}
API_RULES = {
    "v1:whoami": {"get": (None, EVERYONE)},
    "v1:system-list": {"get": (None, EVERYONE), "post": (None, CREATE_OWNED)},
    "v1:system-detail": {"get": ("system", OWN), "patch": ("system", CHANGE_OWNED), "put": ("system", CHANGE_OWNED)},
    # the transitions a person asks for directly; activating an active credential or workflow answers 400
    "v1:system-transition": {"post": ("system", CHANGE_OWNED)},
    "v1:credential-transition": {"post": ("credential", write(400, scope="admin"))},
    "v1:workflow-transition": {"post": ("workflow", write(400, scope="admin"))},
    # retiring directly is for security admins; owners file a retirement request instead
    "v1:system-retire": {"post": ("system", admin_only(200))},
    # the names a system's certificates may carry: security admins declare them
    "v1:system-hosts": {"post": ("system", admin_only(200))},
    "v1:secretstore-list": {"get": (None, EVERYONE), "post": (None, rule(403, 403, 403, 403, 201, 403, tokens=403))},
    "v1:secretstore-detail": {"get": ("store", EVERYONE),
                              "patch": ("store", rule(403, 403, 403, 403, 200, 403, tokens=403)),
                              "put": ("store", rule(403, 403, 403, 403, 200, 403, tokens=403))},
    "v1:credential-list": {"get": (None, EVERYONE),
                           "post": (None, write(201, scope="admin", approver=400, outsider=400))},
    "v1:credential-detail": {"get": ("credential", OWN), "patch": ("credential", CHANGE_OWNED),
                             "put": ("credential", CHANGE_OWNED)},
    "v1:workflow-list": {"get": (None, EVERYONE), "post": (None, CREATE_OWNED)},
    "v1:workflow-detail": {"get": ("workflow", OWN), "patch": ("workflow", CHANGE_OWNED),
                           "put": ("workflow", CHANGE_OWNED)},
    "v1:workflow-retire": {"post": ("workflow", admin_only(200))},
    "v1:binding-list": {"get": (None, EVERYONE), "post": (None, write(201, scope="admin", approver=400,
                                                                      outsider=400))},
    "v1:binding-detail": {"get": ("binding", OWN), "delete": ("binding", write(204, scope="admin"))},
    "v1:person-list": {"get": (None, EVERYONE)},
    "v1:person-detail": {"get": ("person", EVERYONE)},
    "v1:team-list": {"get": (None, EVERYONE)},
    "v1:team-detail": {"get": ("team", EVERYONE)},
    "v1:auditevent-list": {"get": (None, READERS)},
    "v1:auditevent-detail": {"get": ("api_auditevent", READERS)},
    "v1:integration-list": {"get": (None, EVERYONE),
                            "post": (None, rule(403, 403, 403, 403, 201, 403, tokens=403))},
    "v1:integration-detail": {"get": ("api_integration", OWN),
                              "patch": ("api_integration", write(200, scope="admin"))},
    # int_reader owns the matrix integration: an integration may always rotate its own token
    "v1:integration-rotate-token": {"post": ("api_integration", write(201, scope="admin") | {"int_reader": 201})},
    "v1:integration-disable": {"post": ("api_integration", write(200, scope="admin"))},
    "v1:integrationtoken-list": {"get": (None, EVERYONE)},
    "v1:integrationtoken-detail": {"get": ("api_token", OWN)},
    "v1:integrationtoken-revoke": {"post": ("api_token", write(200, scope="admin") | {"int_reader": 200})},
    "v1:webhookendpoint-list": {"get": (None, EVERYONE),
                                "post": (None, rule(403, 403, 403, 403, 201, 403, tokens=403))},
    "v1:webhookendpoint-detail": {"get": ("api_endpoint", OWN), "patch": ("api_endpoint", admin_only(200))},
    "v1:webhookendpoint-rotate-secret": {"post": ("api_endpoint", admin_only(201))},
    "v1:webhookendpoint-disable": {"post": ("api_endpoint", admin_only(200))},
    "v1:webhookendpoint-enable": {"post": ("api_endpoint", admin_only(400))},  # it is already enabled
    "v1:webhookendpoint-ping": {"post": ("api_endpoint", admin_only(201))},
    "v1:webhookdelivery-list": {"get": (None, EVERYONE)},
    "v1:webhookdelivery-detail": {"get": ("api_delivery", OWN)},
    "v1:webhookdelivery-retry": {"post": ("api_delivery", admin_only(200))},
    "v1:approvalrequest-list": {
        "get": (None, EVERYONE),
        "post": (None, write(201, scope="file_requests", approver=400, outsider=400))},  # target not visible
    "v1:approvalrequest-detail": {"get": ("api_approval", rule(200, 200, 200, 200, 200, 404))},
    # the owner filed it: separation of duties refuses the owner (and integrations acting for them)
    "v1:approvalrequest-approve": {"post": ("api_approval", rule(403, 403, 200, 403, 403, 404, tokens=403))},
    "v1:approvalrequest-reject": {"post": ("api_approval", rule(403, 403, 200, 403, 403, 404, tokens=403))},
    "v1:approvalrequest-cancel": {"post": ("api_approval", write(200, scope="file_requests", backup_owner=403,
                                                                 approver=403, secadmin=403))},
    "v1:approvalrequest-ticket": {"post": ("api_approval", write(200, scope="file_requests", approver=200))},
    "v1:finding-list": {"get": (None, EVERYONE)},
    "v1:finding-detail": {"get": ("api_finding", OWN)},
    "v1:finding-acknowledge": {"post": ("api_finding", write(200, scope="file_requests"))},
    "v1:finding-request-risk-acceptance": {"post": ("api_finding", write(201, scope="file_requests"))},
    "v1:finding-ticket": {"post": ("api_finding", write(200, scope="file_requests"))},
    "v1:attestationitem-list": {"get": (None, EVERYONE)},
    "v1:attestationitem-detail": {"get": ("api_item", OWN)},
    # only the assignee (the object's owner) answers
    "v1:attestationitem-answer": {"post": ("api_item", write(200, scope="file_requests", backup_owner=403,
                                                             secadmin=403))},
    "v1:attestationitem-ticket": {"post": ("api_item", write(200, scope="file_requests"))},
    "v1:reportjob-list": {"get": (None, EVERYONE),
                          "post": (None, rule(201, 201, 403, 201, 201, 403))},
    # a team report: its members see it, whoever requested it
    "v1:reportjob-detail": {"get": ("api_report", OWN)},
    "v1:reportjob-download": {"get": ("api_report", OWN)},
    # everyone's own inbox; the owner's notification is hers alone (tokens act as her, read scope suffices)
    "v1:notification-list": {"get": (None, EVERYONE)},
    "v1:notification-read": {"post": ("api_notification", rule(200, 404, 404, 404, 404, 404))},
}


def _first_audit_event(estate, personas):
    from governance.models import AuditEvent

    api_objects(estate, personas)
    return {"pk": AuditEvent.objects.order_by("pk").values_list("pk", flat=True).first()}


KWARGS["api_auditevent"] = _first_audit_event


def _get_rule(methods):
    """What the portal-wide matrix expects for a GET with a session: the GET rule, or 405."""
    if "get" in methods:
        key, expected = methods["get"]
        return key, {p: expected[p] for p in ("anonymous", *SESSION)}
    key = next(iter(methods.values()))[0]
    return key, {"anonymous": 401, **{p: 405 for p in SESSION}}


RULES = {name: _get_rule(methods) for name, methods in API_RULES.items()}
RULES["api-schema"] = (None, {"anonymous": 401, **{p: 200 for p in SESSION}})
RULES["api-docs"] = (None, {p: 200 for p in SESSION})  # anonymous: 302 to sign in


# Separation of duties through integrations, over HTTP: each case files a request of the owner persona (or
# another filer) on a workflow of her team whose own approval path needs two approvals from Platform, then
# runs its steps in order; every step names who acts and the status expected. A token step is
# (integration, X-On-Behalf-Of or None); a session step is a persona. Integrations are made per case:
# name -> (owner persona, scopes); delegations per case: (persona, integration, "active" | "expired" |
# "revoked"). Carl is a team mate of the owner (Payments) who is also in the approvers' group.
SOD_INTEGRATIONS = {"owner-bot": "owner", "ada-bot-1": "approver", "ada-bot-2": "approver",
                    "sec-bot": "secadmin", "oscar-bot": "outsider"}
SOD_CASES = {
    "own-integration-on-behalf-of-a-team-mate": {
        "delegations": [("carl", "owner-bot", "active")],
        "steps": [(("owner-bot", "carl"), 403), (("owner-bot", None), 403)]},
    "own-integration-for-a-team-mate-who-did-not-delegate": {
        "steps": [(("owner-bot", "carl"), 403)]},
    "a-second-integration-of-the-same-person": {
        "delegations": [("carl", "ada-bot-1", "active")],
        "steps": [(("ada-bot-1", "carl"), 200), (("ada-bot-2", None), 403)]},
    "the-same-person-directly-after-their-integration": {
        "delegations": [("carl", "ada-bot-1", "active")],
        "steps": [(("ada-bot-1", "carl"), 200), ("approver", 403)]},
    "two-people-through-their-own-integrations": {
        "steps": [(("ada-bot-1", None), 200), ("carl", 200)], "executes": True},
    "an-integration-whose-owner-is-a-security-admin": {
        "delegations": [("approver", "sec-bot", "active")],
        "steps": [(("sec-bot", "approver"), 200), ("secadmin", 403)]},
    "a-security-admins-integration-on-their-own-request": {
        "filer": "secadmin", "delegations": [("approver", "sec-bot", "active")],
        "steps": [(("sec-bot", "approver"), 403)]},
    "delegation-expired": {
        "delegations": [("approver", "oscar-bot", "expired")],
        "steps": [(("oscar-bot", "approver"), 403)]},
    "delegation-revoked": {
        "delegations": [("approver", "oscar-bot", "revoked")],
        "steps": [(("oscar-bot", "approver"), 403)]},
}


# Incident-response operations (governance/api/views/operations.py) and the jobs they queue -----------

def _operation_objects(estate, personas):
    """A finished drill, a rotation job, a failed revocation and a finished sweep run, for the detail URLs."""
    if "_ops" in estate:
        return estate["_ops"]
    from governance.models.checks import SweepRun
    from governance.models.lifecycle import CredentialRevocation, KillSwitchActivation, KillSwitchStep, RotationJob
    from tests.factories import CredentialFactory

    now = timezone.now()
    made = {
        "activation": KillSwitchActivation.objects.create(
            workflow=estate["workflow"], mode="drill", status="completed", actor_label="olivia.owner",
            workflow_status_before="active", started_at=now, finished_at=now),
        # tests/matrix/lifecycle.py may have made today's job of this credential already (one per day)
        "rotation_job": RotationJob.objects.get_or_create(credential=estate["credential"], due_on=now.date(),
                                                          defaults={"trigger": "manual", "status": "failed",
                                                                    "finished_at": now})[0],
        "revocation": CredentialRevocation.objects.create(
            credential=CredentialFactory(name="ops-revoked-key", system=estate["system"], owner=personas.owner,
                                         team=personas.team), reason="manual", status="failed", error="matrix"),
        "sweep_run": SweepRun.objects.create(started_at=now, finished_at=now, trigger="beat", status="succeeded"),
    }
    made["step"] = KillSwitchStep.objects.create(
        activation=made["activation"], position=1, action="manual_issuer", status="awaiting",
        label="Revoke the key where it is accepted", assignee=personas.owner)
    estate["_ops"] = made
    return made


for _name in ("activation", "rotation_job", "revocation", "sweep_run", "step"):
    KWARGS[f"ops_{_name}"] = (lambda name: lambda e, p: {"pk": _operation_objects(e, p)[name].pk})(_name)

BODIES.update({
    ("v1:workflow-op-kill-switch-activate", "post"): lambda e, p: {"reason": "matrix incident"},
    ("v1:credential-op-rotate", "post"): lambda e, p: {},
    ("v1:credential-op-revoke", "post"): lambda e, p: {"reason": "matrix incident"},
    ("v1:sweeprun-list", "post"): lambda e, p: {},
    ("v1:workflow-op-kill-switch-preview", "post"): lambda e, p: {},
    ("v1:killswitchstep-mark-done", "post"): lambda e, p: {"comment": "revoked at the issuer, INC-1"},
    ("v1:killswitchstep-waive", "post"): lambda e, p: {"reason": "the key was never deployed"},
})

API_RULES.update({
    # the auditor sees the workflow but may not use its kill switch (403); tokens need the operation's scope
    "v1:workflow-op-kill-switch-preview": {"get": ("workflow", write(200, scope="lifecycle:killswitch")),
                                           "post": ("workflow", write(200, scope="lifecycle:killswitch"))},
    "v1:workflow-op-kill-switch-activate": {"post": ("workflow", write(202, scope="lifecycle:killswitch"))},
    "v1:workflow-op-drill": {"post": ("workflow", write(202, scope="lifecycle:drill"))},
    # the estate's credential is in no store with a connector: rotation is refused with a field message
    "v1:credential-op-rotate": {"post": ("credential", write(400, scope="lifecycle:rotate"))},
    "v1:credential-op-revoke": {"post": ("credential", write(202, scope="lifecycle:revoke"))},
    "v1:killswitchactivation-list": {"get": (None, EVERYONE)},
    "v1:killswitchactivation-detail": {"get": ("ops_activation", OWN)},
    "v1:killswitchstep-detail": {"get": ("ops_step", OWN)},
    # a step done by hand: its assignee (the owner) or the owner side and security admins; waived by the latter
    "v1:killswitchstep-mark-done": {"post": ("ops_step", write(200, scope="lifecycle:killswitch"))},
    "v1:killswitchstep-waive": {"post": ("ops_step", rule(403, 403, 404, 403, 200, 404, tokens=403))},
    "v1:rotationjob-list": {"get": (None, EVERYONE)},
    "v1:rotationjob-detail": {"get": ("ops_rotation_job", OWN)},
    "v1:revocation-list": {"get": (None, EVERYONE)},
    "v1:revocation-detail": {"get": ("ops_revocation", OWN)},
    # sweep runs are for readers; sweep now for security admins (tokens act as the owner: refused)
    "v1:sweeprun-list": {"get": (None, EVERYONE), "post": (None, rule(403, 403, 403, 403, 202, 403, tokens=403))},
    "v1:sweeprun-detail": {"get": ("ops_sweep_run", READERS)},
    "v1:credential-provisioning": {"get": ("api_provisioned", OWN)},
})
RULES.update({name: _get_rule(methods) for name, methods in API_RULES.items() if name not in RULES})


# Discovery (governance/api/views/discovery.py): a workflow found in a repository of the owner's system --------

def _discovery_pk(name):
    def build(estate, personas):
        from tests.matrix.discovery import discovery_objects

        return {"pk": discovery_objects(estate, personas)[name].pk}
    return build


for _name in ("source", "item", "run"):
    KWARGS[f"api_discovery_{_name}"] = _discovery_pk(_name)

BODIES.update({
    ("v1:discovereditem-dismiss", "post"): lambda e, p: {"reason": "matrix sandbox", "until": _in_a_month()},
    ("v1:discovereditem-link", "post"): lambda e, p: {"workflow": e["workflow"].pk},
})

API_RULES.update({
    "v1:discovereditem-list": {"get": (None, EVERYONE)},
    "v1:discovereditem-detail": {"get": ("api_discovery_item", OWN)},
    # the auditor sees the item but reviews nothing (403); tokens need file_requests, as for findings
    "v1:discovereditem-dismiss": {"post": ("api_discovery_item", write(200, scope="file_requests"))},
    "v1:discovereditem-link": {"post": ("api_discovery_item", write(200, scope="file_requests"))},
    "v1:discoverysource-list": {"get": (None, EVERYONE)},
    "v1:discoverysource-detail": {"get": ("api_discovery_source", OWN)},
    # security admins and the owners of the source's system; tokens need discovery:run
    "v1:discoverysource-run": {"post": ("api_discovery_source", write(202, scope="discovery:run"))},
    "v1:discoveryrun-list": {"get": (None, EVERYONE)},
    "v1:discoveryrun-detail": {"get": ("api_discovery_run", OWN)},
})
RULES.update({name: _get_rule(methods) for name, methods in API_RULES.items() if name not in RULES})
