"""Every API endpoint and method, for every persona: people (session) and integrations (tokens).

The rules are in tests/matrix/integrations_api.py. An endpoint without a rule fails here. Each
request runs in a transaction that is rolled back, so every request sees the same estate.
"""

import datetime as dt

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit import Actor
from governance.models.approvals import ApprovalDecision
from governance.models.integrations import Delegation
from governance.services.approvals import approval_request_file
from governance.services.delegations import delegation_revoke
from tests.factories import PersonFactory, SecretStoreFactory, WorkflowFactory
from tests.factories_approvals import make_policy
from tests.factories_integrations import bearer, delegate, make_integration
from tests.matrix.integrations_api import (
    API_PERSONAS,
    API_RULES,
    BODIES,
    KWARGS,
    SOD_CASES,
    SOD_INTEGRATIONS,
    api_objects,
)

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")


def api_operations():
    """(url name, method) of every operation under /api/v1/."""
    def walk(resolver, namespace=None):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace == "v1":
                actions = getattr(pattern.callback, "actions", None)
                if actions is None:
                    view_class = pattern.callback.view_class
                    methods = [m for m in METHODS if hasattr(view_class, m)]
                else:
                    methods = [m for m in actions if m in METHODS]
                for method in methods:
                    yield f"v1:{pattern.name}", method
    return set(walk(get_resolver()))


def test_every_api_operation_has_a_rule():
    ruled = {(name, method) for name, methods in API_RULES.items() for method in methods}
    missing = sorted(api_operations() - ruled)
    assert missing == [], f"API operations without a permission-matrix rule: {missing}"
    stale = sorted(ruled - api_operations())
    assert stale == [], f"rules for operations that do not exist: {stale}"


def _kwargs(key, estate, personas):
    if key is None:
        return {}
    if key in KWARGS:
        return KWARGS[key](estate, personas)
    obj = {"person": personas.owner, "team": personas.team}.get(key) or estate[key]
    return {"pk": obj.pk}


@pytest.fixture
def api_estate(estate, personas, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    estate["store"] = SecretStoreFactory(name="matrix-store")
    api_objects(estate, personas)
    return estate


def test_api_permission_matrix(personas, api_estate):
    """One estate for every persona (each request is rolled back), to keep the matrix fast."""
    failures = []
    for persona in API_PERSONAS:
        failures += _run_persona(persona, personas, api_estate)
    assert failures == [], "\n".join(failures)


def _run_persona(persona, personas, api_estate):
    client = APIClient()
    headers = {}
    if persona.startswith("int_"):
        headers = bearer(api_estate["_api"]["tokens"][persona])
    elif persona != "anonymous":
        client.force_login(getattr(personas, persona))
    failures = []
    for name, methods in sorted(API_RULES.items()):
        for method, (key, expected) in sorted(methods.items()):
            url = reverse(name, kwargs=_kwargs(key, api_estate, personas))
            body = BODIES.get((name, method), lambda e, p: {})(api_estate, personas) if method != "get" else None
            with transaction.atomic():
                response = getattr(client, method)(url, body, format="json", **headers) if body is not None \
                    else getattr(client, method)(url, **headers)
                transaction.set_rollback(True)
            if response.status_code != expected[persona]:
                detail = response.json() if response.get("content-type") == "application/json" else ""
                failures.append(f"{persona}: {method.upper()} {name} {url}: expected {expected[persona]}, got "
                                f"{response.status_code} {detail}")
    return failures


@pytest.mark.parametrize("case", sorted(SOD_CASES))
def test_separation_of_duties_through_integrations_matrix(personas, estate, case):
    """Every step of the case answers its expected status; a refused step changes nothing."""
    spec = SOD_CASES[case]
    people = {"carl": PersonFactory(username="carl.teammate", teams=[personas.team])}
    people["carl"].groups.add(personas.other_team.group)
    for persona in ("owner", "approver", "secadmin", "outsider"):
        people[persona] = getattr(personas, persona)
    tokens, integrations = {}, {}
    for name, owner in SOD_INTEGRATIONS.items():
        integrations[name], tokens[name] = make_integration(owner=people[owner], name=name,
                                                            scopes=["read", "file_requests", "decide_requests"])
    for persona, name, state in spec.get("delegations", ()):
        delegation = delegate(people[persona], integrations[name])
        if state == "revoked":
            delegation_revoke(actor=Actor.for_user(people[persona]), delegation=delegation)
        elif state == "expired":
            past = timezone.now() - dt.timedelta(minutes=1)
            Delegation.objects.filter(pk=delegation.pk).update(created_at=past - dt.timedelta(days=1),
                                                               expires_at=past)
    policy = make_policy(name="Two from Platform", groups=[personas.other_team.group], required=2, defaults=[])
    workflow = WorkflowFactory(name="sod-matrix-job", owner=personas.owner, team=personas.team,
                               approval_policy=policy)
    request = approval_request_file(actor=Actor.for_user(people[spec.get("filer", "owner")]), action="retirement",
                                    target=workflow, payload={}, justification="Replaced by the batch platform")
    url = reverse("v1:approvalrequest-approve", kwargs={"pk": request.pk})
    decisions = 0
    for who, expected in spec["steps"]:
        client = APIClient()
        if isinstance(who, tuple):
            name, on_behalf_of = who
            response = client.post(url, {}, format="json",
                                   **bearer(tokens[name], people[on_behalf_of].username if on_behalf_of else None))
        else:
            client.force_login(people[who])
            response = client.post(url, {}, format="json")
        assert response.status_code == expected, (who, response.json())
        decisions += expected == 200
        assert ApprovalDecision.objects.filter(request=request).count() == decisions
    request.refresh_from_db()
    assert request.status == ("executed" if spec.get("executes") else "pending")
