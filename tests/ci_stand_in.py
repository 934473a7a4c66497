"""GitHub Actions and GitLab CI for the tests: governance.demo_ci_server on a free loopback port.

The stand-in implements only the documented endpoints the connectors use; it decrypts every
sealed box with its private key, so a test proves the value arrived by reading it back there.
"""

from __future__ import annotations

import os
import secrets
import uuid

import pytest

from governance.demo_ci_server import CIStandIn

GITHUB_TOKEN_ENV = "STEWARD_TEST_GITHUB_TOKEN"
GITLAB_TOKEN_ENV = "STEWARD_TEST_GITLAB_TOKEN"


@pytest.fixture(scope="session")
def ci_server():
    server = CIStandIn(github_token=secrets.token_urlsafe(16), gitlab_token=secrets.token_urlsafe(16)).start()
    os.environ[GITHUB_TOKEN_ENV] = server.github_token
    os.environ[GITLAB_TOKEN_ENV] = server.gitlab_token
    yield server
    server.stop()
    os.environ.pop(GITHUB_TOKEN_ENV, None)
    os.environ.pop(GITLAB_TOKEN_ENV, None)


def repository(server, *environments: str) -> str:
    name = f"acme/app-{uuid.uuid4().hex[:8]}"
    server.add_repository(name, *environments)
    return name


def project(server) -> str:
    name = f"acme/group/app-{uuid.uuid4().hex[:8]}"
    server.add_project(name)
    return name
