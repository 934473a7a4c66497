"""GitHub Actions secrets and GitLab CI/CD variables against the local CI API stand-in.

The stand-in decrypts every sealed box with its own private key: a value is proven to have
arrived when the stand-in holds it in clear, and the old value is proven gone when it does not.
"""

import pytest

from governance.connectors.base import Misconfigured, ReferenceBroken, Unreachable
from governance.connectors.ci_common import CILocation, CISettings
from governance.connectors.github_actions import GitHubActions
from governance.connectors.gitlab_ci import GitLabCI
from tests.ci_stand_in import GITHUB_TOKEN_ENV, GITLAB_TOKEN_ENV, project, repository
from tests.governance.connectors.conftest import ref
from tests.lifecycle_servers import free_port


@pytest.fixture
def github(ci_server):
    return GitHubActions(CISettings(address=ci_server.address, token_env_var=GITHUB_TOKEN_ENV, timeout=5))


@pytest.fixture
def gitlab(ci_server):
    return GitLabCI(CISettings(address=ci_server.address, token_env_var=GITLAB_TOKEN_ENV, timeout=5))


def test_location_from_a_store_path():
    assert CILocation.from_path("acme/app/DEPLOY_KEY") == CILocation("acme/app", "", "DEPLOY_KEY")
    assert CILocation.from_path("acme/app/environments/production/DEPLOY_KEY") == CILocation(
        "acme/app", "production", "DEPLOY_KEY")
    assert CILocation.from_path("group/sub/project/TOKEN").repository == "group/sub/project"
    with pytest.raises(ReferenceBroken):
        CILocation.from_path("acme/app/not-a-name!")


@pytest.mark.parametrize("environment", ["", "production"])
def test_github_push_is_a_sealed_box_the_server_opens(ci_server, github, environment):
    repo = repository(ci_server, "production")
    location = CILocation(repo, environment, "API_TOKEN")
    state, proof = github.push(location, "first-value-123")
    assert ci_server.secret_value(repo, "API_TOKEN", environment) == "first-value-123"
    assert state.version and "sealed box" in proof[0]
    path = f"{repo}/environments/{environment}/API_TOKEN" if environment else f"{repo}/API_TOKEN"
    result = github.rotate(ref(store_path=path))
    new = ci_server.secret_value(repo, "API_TOKEN", environment)
    assert new not in (None, "first-value-123")
    assert new not in repr(result)
    assert github.observe(ref(store_path=path)).version == result.version


def test_github_suspend_deletes_and_reactivation_pushes_a_new_value(ci_server, github):
    repo = repository(ci_server)
    github.push(CILocation(repo, "", "API_TOKEN"), "incident-value-1")
    credential = ref(store_path=f"{repo}/API_TOKEN")
    suspended = github.suspend(credential)
    assert ci_server.secret_value(repo, "API_TOKEN") is None
    assert "404" in suspended.proof[0]
    reactivated = github.reactivate(credential)
    assert ci_server.secret_value(repo, "API_TOKEN") not in (None, "incident-value-1")
    assert reactivated.rotation is not None
    github.revoke(credential)
    assert ci_server.secret_value(repo, "API_TOKEN") is None


def test_github_missing_repository_and_bad_token(ci_server, github, monkeypatch):
    with pytest.raises(ReferenceBroken):
        github.rotate(ref(store_path="acme/no-such-repo/API_TOKEN"))
    repo = repository(ci_server)
    monkeypatch.setenv(GITHUB_TOKEN_ENV, "wrong-token")
    with pytest.raises(Misconfigured, match="401"):
        github.push(CILocation(repo, "", "API_TOKEN"), "some-value-123")
    assert ci_server.secret_value(repo, "API_TOKEN") is None


@pytest.mark.parametrize("environment", ["", "production"])
def test_gitlab_variable_masked_protected_read_back(ci_server, gitlab, environment):
    path = project(ci_server)
    location = CILocation(path, environment, "DEPLOY_TOKEN")
    gitlab.push(location, "first-value-123")
    scope = environment or "*"
    stored = ci_server.variable(path, "DEPLOY_TOKEN", scope)
    assert stored["value"] == "first-value-123" and stored["masked"] and stored["protected"]
    store_path = f"{path}/environments/{environment}/DEPLOY_TOKEN" if environment else f"{path}/DEPLOY_TOKEN"
    result = gitlab.rotate(ref(store_path=store_path))
    new = ci_server.variable(path, "DEPLOY_TOKEN", scope)["value"]
    assert new != "first-value-123" and new not in repr(result)
    assert "holds the new value" in result.proof[0]
    assert gitlab.observe(ref(store_path=store_path)).version == result.version
    gitlab.suspend(ref(store_path=store_path))
    assert ci_server.variable(path, "DEPLOY_TOKEN", scope) is None


def test_gitlab_refuses_a_short_masked_value_before_writing(ci_server, gitlab):
    path = project(ci_server)
    with pytest.raises(Exception, match="masks only"):
        gitlab.push(CILocation(path, "", "SHORT"), "abc")
    assert ci_server.variable(path, "SHORT") is None


def test_gitlab_missing_project_is_a_broken_reference(gitlab):
    with pytest.raises(ReferenceBroken):
        gitlab.rotate(ref(store_path="acme/no-such-project/DEPLOY_TOKEN"))


@pytest.mark.parametrize("connector_class,env", [(GitHubActions, GITHUB_TOKEN_ENV), (GitLabCI, GITLAB_TOKEN_ENV)])
def test_unreachable_ci_api_is_reported(ci_server, connector_class, env):
    dead = connector_class(CISettings(address=f"http://127.0.0.1:{free_port()}", token_env_var=env, timeout=2))
    with pytest.raises(Unreachable):
        dead.rotate(ref(store_path="acme/app/API_TOKEN"))
    with pytest.raises(Unreachable):
        dead.suspend(ref(store_path="acme/app/API_TOKEN"))
    assert not dead.probe(ref(store_path="acme/app/API_TOKEN")).ok


def test_probes(ci_server, github, gitlab):
    repo, path = repository(ci_server), project(ci_server)
    github.push(CILocation(repo, "", "API_TOKEN"), "some-value-123")
    gitlab.push(CILocation(path, "", "API_TOKEN"), "some-value-123")
    assert github.probe(ref(store_path=f"{repo}/API_TOKEN")).ok
    assert gitlab.probe(ref(store_path=f"{path}/API_TOKEN")).ok
    assert not github.probe(ref(store_path=f"{repo}/MISSING")).ok
