"""Every page, for every persona, answers the expected status. A page without a rule fails here.

Objects in the URLs belong to the owner persona's team, so the matrix also proves that what a
user may not see answers 404 (never 403, never 200).
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = [pytest.mark.django_db]

PERSONAS = ("anonymous", "owner", "backup_owner", "approver", "auditor", "secadmin", "outsider")
SIGNED_IN = PERSONAS[1:]
OWN = {"owner": 200, "backup_owner": 200, "approver": 404, "auditor": 200, "secadmin": 200, "outsider": 404}
OWN_CHANGE = {**OWN, "auditor": 404}
EVERYONE = {p: 200 for p in SIGNED_IN}
READERS = {p: 404 for p in SIGNED_IN} | {"auditor": 200, "secadmin": 200}
ADMINS = {p: 404 for p in SIGNED_IN} | {"secadmin": 200}
WRITERS = {**EVERYONE, "auditor": 404}
NOBODY = {p: 404 for p in SIGNED_IN}
POST_ONLY = {p: 405 for p in SIGNED_IN}

# url name -> (kwargs builder key, expected per signed-in persona). Anonymous: 302 unless stated.
MATRIX = {
    "home": (None, EVERYONE),
    "healthz": (None, EVERYONE | {"anonymous": 200}),
    "login": (None, {p: 302 for p in SIGNED_IN} | {"anonymous": 200}),
    "logout": (None, POST_ONLY | {"anonymous": 405}),
    "password_change": (None, EVERYONE),
    "password_change_done": (None, EVERYONE),
    "person-list": (None, EVERYONE),
    "person-detail": ("person", EVERYONE),
    "person-depart": ("person", POST_ONLY),
    "team-list": (None, EVERYONE),
    "team-detail": ("team", EVERYONE),
    "audit-log": (None, READERS),
    "audit-export": ("csv", READERS),
    "inventory-import": (None, WRITERS),
    "binding-create": ("workflow", OWN_CHANGE),
}
for kind, key in (("workflow", "workflow"), ("credential", "credential"), ("system", "system")):
    MATRIX.update({
        f"{kind}-list": (None, EVERYONE),
        f"{kind}-export": ("csv", EVERYONE),
        f"{kind}-create": (None, WRITERS),
        f"{kind}-detail": (key, OWN),
        f"{kind}-edit": (key, OWN_CHANGE),
        f"{kind}-transfer": (key, OWN_CHANGE),
        f"{kind}-retire": (key, OWN_CHANGE if kind != "credential" else NOBODY),
    })
MATRIX.update({
    "secretstore-list": (None, EVERYONE),
    "secretstore-export": ("csv", EVERYONE),
    "secretstore-create": (None, ADMINS),
    "secretstore-detail": ("store", EVERYONE),
    "secretstore-edit": ("store", ADMINS),
    "secretstore-transfer": ("store", NOBODY),
    "secretstore-retire": ("store", NOBODY),
})
# Namespaced apps with their own access rules, tested elsewhere.
EXCLUDED_NAMESPACES = {"admin"}


def all_url_names(resolver=None, namespace=None):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace in EXCLUDED_NAMESPACES:
                continue
            yield from all_url_names(pattern, pattern.namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def test_every_page_has_a_rule():
    missing = sorted(set(all_url_names()) - set(MATRIX))
    assert missing == [], f"pages without a permission-matrix rule: {missing}"


def _kwargs(key, estate, personas):
    if key is None:
        return {}
    if key in ("csv", "json"):
        return {"fmt": key}
    obj = {"person": personas.owner, "team": personas.team}.get(key) or estate[key]
    return {"pk": obj.pk}


@pytest.fixture
def matrix_estate(estate):
    from tests.factories import SecretStoreFactory

    estate["store"] = SecretStoreFactory(name="matrix-store")
    return estate


@pytest.mark.parametrize("persona", PERSONAS)
def test_permission_matrix(client, personas, matrix_estate, persona):
    if persona != "anonymous":
        client.force_login(getattr(personas, persona))
    failures = []
    for name, (key, expected) in sorted(MATRIX.items()):
        url = reverse(name, kwargs=_kwargs(key, matrix_estate, personas))
        want = expected.get(persona, 302)
        status = client.get(url).status_code
        if status != want:
            failures.append(f"{name} {url}: expected {want}, got {status}")
    assert failures == []
