"""API fixtures: a DRF client, and integration personas (tokens) next to the session personas."""

import pytest
from rest_framework.test import APIClient

from tests.factories_integrations import make_integration


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def integrations(personas):
    """Tokens owned by the owner persona (team Payments): a reader, a filer, a decider, an admin."""
    made = {}
    for name, scopes in {"reader": ["read"], "filer": ["read", "file_requests"],
                         "decider": ["read", "decide_requests"], "admin": ["admin"]}.items():
        integration, token = make_integration(owner=personas.owner, scopes=scopes, name=f"ci-{name}",
                                              team=personas.team)
        made[name] = (integration, token)
    return made
