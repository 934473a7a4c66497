"""The repository source on git repositories the tests create (bare and not) and on a plain directory."""

from pathlib import Path

import pytest

from governance.discovery.fingerprint import secret_fingerprint
from governance.discovery.parsers.secrets import scan_text
from governance.discovery.sources.repository import RepositorySettings, RepositorySource
from governance.models.discovery import DiscoveredKind, DiscoverySource
from tests.governance.discovery.gitrepo import fake_github_token, fake_password, fake_private_key, make_repo

FIXTURES = Path(__file__).parent / "fixtures"


def repository_commits():
    token, password, key = fake_github_token("wf"), fake_password("cfg"), fake_private_key("old")
    deploy = (FIXTURES / "github_deploy.yml").read_text()
    return [
        {"README.md": "# payments\n", "deploy/id_ed25519": key},  # a key committed, then removed
        {".github/workflows/deploy.yml": deploy, "Jenkinsfile": (FIXTURES / "Jenkinsfile").read_text(),
         "config/settings.ini": f"[db]\nhost = db.internal\npassword = {password}\n"},
        {"deploy/id_ed25519": None,
         ".github/workflows/nightly.yml": "name: Nightly\non:\n  schedule:\n    - cron: '0 4 * * *'\njobs:\n"
                                          "  n:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./n.sh\n"
                                          f"        env:\n          GH_TOKEN: {token}\n",
         "k8s/cronjob.yaml": (FIXTURES / "k8s_cronjob.yaml").read_text()},
    ], token, password, key


def source_for(path: Path, **settings) -> RepositorySource:
    model = DiscoverySource(name="payments-repo", kind="repository", settings={"path": str(path), **settings})
    return RepositorySource(RepositorySettings.from_source(model))


@pytest.mark.parametrize("bare", [False, True])
def test_workflows_identities_and_planted_secrets_in_tree_and_history(tmp_path, bare):
    commits, token, password, key = repository_commits()
    ids = make_repo(tmp_path / "repo", commits, bare=bare)
    source = source_for(tmp_path / "repo")
    items = list(source.observe())
    by_kind = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    workflows = {w.natural_key: w for w in by_kind[DiscoveredKind.WORKFLOW]}
    assert set(workflows) == {".github/workflows/deploy.yml", ".github/workflows/nightly.yml", "Jenkinsfile",
                              "k8s/cronjob.yaml#CronJob/payments/nightly-report"}
    deploy = workflows[".github/workflows/deploy.yml"]
    assert deploy.name == "repo: Deploy payments"  # the repository is named after its folder by default
    assert deploy.facts["secrets"] == ["AWS_DEPLOY_ROLE", "PAYMENTS_DB_PASSWORD"]
    assert deploy.facts["commit"] == ids[-1]
    assert [i.natural_key for i in by_kind[DiscoveredKind.SERVICE_ACCOUNT]] == [
        "k8s/cronjob.yaml#ServiceAccount/payments/report-exporter"]

    secrets = {(s.facts["path"], s.fingerprint): s for s in by_kind[DiscoveredKind.HARD_CODED_SECRET]}
    assert ("config/settings.ini", secret_fingerprint(password)) in secrets
    assert (".github/workflows/nightly.yml", secret_fingerprint(token)) in secrets
    removed = secrets[("deploy/id_ed25519", secret_fingerprint(key))]
    assert removed.facts["in_head"] is False and removed.facts["found_in"] == "history"
    assert removed.facts["commit"] == ids[0]
    in_config = secrets[("config/settings.ini", secret_fingerprint(password))]
    assert in_config.facts["in_head"] is True and in_config.facts["line"] == 3
    assert in_config.facts["commit"] == ids[1]  # the commit that introduced it, found walking back
    for item in items:  # no value anywhere in what the source hands on
        text = repr(item)
        assert token not in text and password not in text and "FAKEKEYDATA" not in text
    assert source.stats.files == 6 and source.stats.commits == 3


def test_history_depth_zero_misses_the_removed_secret(tmp_path):
    commits, *_ = repository_commits()
    make_repo(tmp_path / "repo", commits)
    items = list(source_for(tmp_path / "repo", history_depth=0).observe())
    assert not [i for i in items if i.facts.get("path") == "deploy/id_ed25519"]


def test_a_plain_directory_is_scanned_without_history(tmp_path):
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "crontab").write_text((FIXTURES / "crontab").read_text())
    (tmp_path / "ops" / ".env").write_text(f"API_TOKEN={fake_github_token('dir')}\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text(f"var password = '{fake_password('nm')}';\n")
    items = list(source_for(tmp_path).observe())
    kinds = sorted(i.kind for i in items)
    assert kinds.count(DiscoveredKind.WORKFLOW) == 3
    assert [i.facts["path"] for i in items if i.kind == DiscoveredKind.HARD_CODED_SECRET] == ["ops/.env"]


def test_the_same_secret_in_two_files_has_one_fingerprint(tmp_path):
    password = fake_password("twice")
    make_repo(tmp_path / "repo", [{"a.env": f"DB_PASSWORD={password}\n", "b/app.yml": f"password: {password}\n"}])
    secrets = [i for i in source_for(tmp_path / "repo").observe() if i.kind == DiscoveredKind.HARD_CODED_SECRET]
    assert len(secrets) == 2 and len({s.fingerprint for s in secrets}) == 1


def test_references_are_not_secrets():
    text = ("password: ${{ secrets.DB_PASSWORD }}\napi_key = os.environ['API_KEY']\ntoken: {{ vault_token }}\n"
            "DB_PASSWORD=$DB_PASSWORD\nsecret: kv/payments/db\n")
    assert scan_text(text) == []


def test_a_secret_hit_never_shows_its_value():
    [hit] = scan_text(f"token = {fake_github_token('repr')}\n")
    assert fake_github_token("repr") not in repr(hit)


def test_missing_repository_is_a_source_error(tmp_path):
    from governance.discovery.sources.base import SourceError

    with pytest.raises(SourceError, match="not a directory"):
        list(source_for(tmp_path / "nowhere").observe())
