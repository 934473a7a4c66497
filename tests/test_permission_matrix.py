"""Every page, for every persona, answers the expected status. A page without a rule fails here.

Objects in the URLs belong to the owner persona's team, so the matrix also proves that what a
user may not see answers 404 (never 403, never 200).
"""

import importlib
import pkgutil

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

import tests.matrix
from tests.matrix_personas import (
    ADMINS,
    EVERYONE,
    NOBODY,
    OWN,
    OWN_CHANGE,
    PERSONAS,
    POST_ONLY,
    READERS,
    SIGNED_IN,
    WRITERS,
)

pytestmark = [pytest.mark.django_db]

# url name -> (kwargs builder key, expected per signed-in persona). Anonymous: 302 unless stated.
MATRIX = {
    "home": (None, EVERYONE),
    "healthz": (None, EVERYONE | {"anonymous": 200}),
    "search": (None, EVERYONE),
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
        f"{kind}-transfer": (key, ADMINS),
        f"{kind}-retire": (key, ADMINS if kind != "credential" else NOBODY),
        f"{kind}-transition": (key, POST_ONLY),
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
# Each capability adds its pages in tests/matrix/<capability>.py as RULES = {url name: (key, expected)}.
# The builder keys it may use are in KWARGS_BUILDERS below (or its own KWARGS dict of key -> callable).
EXTRA_KWARGS = {}
for _module in pkgutil.iter_modules(tests.matrix.__path__):
    _rules = importlib.import_module(f"tests.matrix.{_module.name}")
    MATRIX.update(_rules.RULES)
    EXTRA_KWARGS.update(getattr(_rules, "KWARGS", {}))

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
    if key in EXTRA_KWARGS:
        return EXTRA_KWARGS[key](estate, personas)
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
