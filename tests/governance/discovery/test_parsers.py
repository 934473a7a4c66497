"""Each definition parser against its own fixture (tests/governance/discovery/fixtures/)."""

import random
from pathlib import Path

import pytest

from governance.discovery.parsers import ParseError, definition_parser
from governance.discovery.parsers.ci import parse_github_actions, parse_gitlab_ci, parse_jenkinsfile
from governance.discovery.parsers.infra import (
    parse_ansible,
    parse_compose,
    parse_crontab,
    parse_kubernetes,
    parse_terraform,
)
from governance.discovery.parsers.secrets import CANDIDATE, candidate_line_numbers

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_github_actions_deploy_is_unattended_with_its_secrets_and_permissions():
    definition = parse_github_actions(".github/workflows/deploy.yml", fixture("github_deploy.yml"))
    [workflow] = definition.workflows
    assert workflow.name == "Deploy payments"
    assert workflow.unattended
    assert {"push", "schedule", "workflow_dispatch", "cron 17 3 * * *"} <= set(workflow.triggers)
    assert workflow.secrets == ["AWS_DEPLOY_ROLE", "PAYMENTS_DB_PASSWORD"]  # GITHUB_TOKEN is the runner's own
    assert workflow.permissions == {"contents": "read", "id-token": "write"}
    assert workflow.privileged  # id-token: write reaches the cloud


def test_github_pull_request_workflow_needs_a_person():
    [workflow] = parse_github_actions(".github/workflows/test.yml", fixture("github_pr.yml")).workflows
    assert not workflow.unattended
    assert workflow.permissions == "default"


def test_gitlab_scheduled_job_with_vault_secret_and_script_token():
    definition = parse_gitlab_ci(".gitlab-ci.yml", fixture("gitlab-ci.yml"))
    jobs = {w.name: w for w in definition.workflows}
    assert set(jobs) == {"test", "nightly-export"}  # hidden templates and keywords are not jobs
    nightly = jobs["nightly-export"]
    assert nightly.unattended and nightly.triggers == ["schedule"]
    assert {"DATABASE_PASSWORD", "EXPORT_API_TOKEN", "DEPLOY_TOKEN"} <= set(nightly.secrets)
    assert not jobs["test"].unattended


def test_jenkinsfile_cron_and_upstream_triggers_and_credentials():
    [workflow] = parse_jenkinsfile("Jenkinsfile", fixture("Jenkinsfile")).workflows
    assert workflow.unattended
    assert workflow.triggers == ["cron", "upstream"]
    assert workflow.secrets == ["nexus-deployer", "registry-push"]


def test_kubernetes_cronjob_service_account_and_privileged_binding():
    definition = parse_kubernetes("deploy/k8s/report.yaml", fixture("k8s_cronjob.yaml"))
    [cronjob] = definition.workflows
    assert cronjob.name == "payments/nightly-report" and cronjob.kind == "scheduled_job"
    assert cronjob.triggers == ["cron 0 1 * * *"]
    assert cronjob.secrets == ["export-api", "payments-db/password"]
    assert cronjob.identities == ["payments/report-exporter"]
    assert cronjob.privileged  # its service account is bound to cluster-admin
    [account] = definition.identities
    assert account.name == "payments/report-exporter" and account.privileged


def test_kubernetes_secret_values_are_handed_back_to_be_fingerprinted_only():
    text = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n  token: not-a-real-token-123\n"
            "data:\n  password: ZGVtby1wYXNzd29yZC0x\n")
    definition = parse_kubernetes("k8s/secret.yaml", text)
    values = sorted(value for _line, _kind, value in definition.embedded_secrets)
    assert values == ["demo-password-1", "not-a-real-token-123"]
    assert not definition.workflows


def test_crontab_lines_become_scheduled_workflows():
    definition = parse_crontab("ops/crontab", fixture("crontab"))
    names = [w.name for w in definition.workflows]
    assert len(names) == 3
    backup = next(w for w in definition.workflows if "backup.sh" in w.name)
    assert backup.secrets == ["BACKUP_API_TOKEN"] and backup.triggers == ["cron 30 2 * * 1"]
    assert all(w.unattended for w in definition.workflows)


def test_system_crontab_names_the_user_it_runs_as():
    definition = parse_crontab("etc/cron.d/sync", "0 * * * * root /usr/bin/sync\n")
    [workflow] = definition.workflows
    assert workflow.identities == ["root"] and workflow.privileged


def test_terraform_identity_resources_and_admin_policy():
    definition = parse_terraform("infra/main.tf", fixture("main.tf"))
    names = {i.name: i for i in definition.identities}
    assert set(names) == {"aws_iam_user.ci", "aws_iam_access_key.ci", "tls_private_key.deploy"}
    assert names["aws_iam_access_key.ci"].privileged  # AdministratorAccess in the same module
    assert not names["tls_private_key.deploy"].privileged


def test_ansible_accounts_created_by_a_playbook():
    definition = parse_ansible("playbooks/db.yml", fixture("playbook.yml"))
    names = {i.name: i for i in definition.identities}
    assert set(names) == {"reporting", "backup-op"}  # a templated name is not an account
    assert names["backup-op"].privileged and not names["reporting"].privileged
    assert names["reporting"].facts["no_log"] is True


def test_compose_service_with_restart_policy_and_secret_references():
    definition = parse_compose("docker-compose.yml", fixture("docker-compose.yml"))
    [worker] = definition.workflows
    assert worker.unattended and worker.secrets == ["WORKER_API_TOKEN", "ledger_key"]
    assert not definition.embedded_secrets


def test_compose_literal_secret_is_embedded():
    text = "services:\n  app:\n    image: x\n    environment:\n      DB_PASSWORD: literal-Value-99\n"
    definition = parse_compose("compose.yaml", text)
    assert [value for *_rest, value in definition.embedded_secrets] == ["literal-Value-99"]


@pytest.mark.parametrize(("path", "text", "parser"), [
    (".github/workflows/ci.yml", "", parse_github_actions),
    (".gitlab-ci.yml", "", parse_gitlab_ci),
    ("Jenkinsfile", "", parse_jenkinsfile),
    ("ops/app.cron", "", parse_crontab),
    ("infra/iam.tf", "", parse_terraform),
    ("docker-compose.prod.yml", "", parse_compose),
    ("k8s/job.yaml", "apiVersion: batch/v1\nkind: Job\n", parse_kubernetes),
    ("site.yml", "- hosts: all\n  tasks: []\n", parse_ansible),
    ("README.md", "", None),
    ("config/app.yaml", "debug: true\n", None),
])
def test_definition_parser_by_path(path, text, parser):
    assert definition_parser(path, text) is parser


def test_invalid_yaml_names_the_file_and_line_not_the_content():
    with pytest.raises(ParseError) as error:
        parse_github_actions(".github/workflows/x.yml", "on: [push\njobs: {token: hunter2-secret}")
    assert ".github/workflows/x.yml" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_the_fast_candidate_lines_miss_no_line_candidate_matches():
    """scan_text looks only at the lines holding an anchor: every line CANDIDATE matches must hold one."""
    pieces = ["pass", "PassWord", "SECRET", "Token", "api-key", "ACCESS_KEY", "auth", "Cred", "bearer", "PRIVATE",
              "-----BEGIN", "https://u:p@h", "AKIA", "ASIA", "ghp_", "gho_", "github_pat_", "glpat-", "xoxb-",
              "sk_live_", "rk_test_", "sk-", "AIza", "eyJ", "SG.", "npm_", "pypi-", "AccountKey", "AC" + "a" * 32,
              "SK" + "0" * 32, "123456789:AA", "sq0csp-", "hvs.", "hvb.", "plain", "words", " ", "=", '"', "\n"]
    rng = random.Random(18)
    texts = [path.read_text() for path in FIXTURES.iterdir() if path.is_file()]
    texts += ["".join(rng.choice(pieces) for _ in range(60)) for _ in range(300)]
    for text in texts:
        anchored = candidate_line_numbers(text)
        if anchored is None:
            continue
        wanted = {n for n, line in enumerate(text.splitlines(), start=1) if CANDIDATE.search(line)}
        assert wanted <= anchored
    assert candidate_line_numbers("pa\u017fs = x\n") is None  # not ASCII: the per-line path
