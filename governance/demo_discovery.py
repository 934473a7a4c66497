"""The demo's discovery: a small git repository with undeclared automation and planted FAKE secrets, and the
demo OpenBao as a source, each read once so that the review queue is full when `make run` opens.

seed_demo (governance.demo.seed_demo_capabilities, before its sweep) calls seed_demo_discovery: it writes a
bare git repository under the var dir (var/demo/repositories/payments-api.git, with dulwich) holding a
GitHub Actions deploy workflow (a schedule trigger, secrets.DEPLOY_TOKEN, write permissions), a GitLab CI
scheduled job, a Jenkinsfile with credentials('...'), a Kubernetes CronJob whose service account is bound to
cluster-admin, and three planted secrets: an AWS-style key pair in a config file, a GitHub token in the
deploy workflow, and a high-entropy signing secret added in the first commit and removed in a later one (it
is only in the history). It registers the repository as a discovery source of the payments-api system and
runs it synchronously (the run service directly, no broker), audited as the system task seed_demo_discovery.

`make run` calls seed_demo_discovery_openbao once its OpenBao dev server answers and the demo secrets are
written: the demo KV store becomes an openbao source, read at once (demo credentials whose secret is not
there are "declared but missing").

Every planted value is obviously fake (FAKE, DEMO, NOTREAL in it) and assembled here from pieces, so that no
scanner run over Steward's own source reports this module. What discovery keeps of them is a keyed
fingerprint and a location, never the value.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from dulwich.index import commit_tree
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo

from governance.audit import Actor
from governance.demo_lifecycle import KV_STORE, openbao_answers
from governance.discovery.services import (
    discovery_run_execute,
    discovery_run_request,
    discovery_source_create,
    discovery_source_update,
)
from governance.models import SecretStore, System
from governance.models.discovery import DiscoveredItem, DiscoveryRun, DiscoverySource

TASK_ID = "seed_demo_discovery"
REPOSITORY = "payments-api"
SYSTEM = "payments-api"
REPOSITORY_SOURCE = "payments-api repository"
OPENBAO_SOURCE = "openbao-prod (KV metadata)"
AUTHOR = b"Payments Platform <payments@acme.example>"
FIRST_COMMIT_TIME = 1_767_225_600  # 2026-01-01: the demo history is fixed, so its commit ids are too


def _fake_aws_key_pair() -> tuple[str, str]:
    return "AKIA" + "FAKEDEMO0EXAMPLE", "wJalr" + "XUtnFEMI/K7MDENG/bPxRfiCY" + "FAKEDEMOKE"


def _fake_github_token() -> str:
    return "gh" + "p_" + "FAKEdemoTOKEN0000" + "notreal0000FAKEdemo"


def _fake_signing_secret() -> str:
    return "Zx9Qm4Tf7Lp2" + "Wv8Rk3Nd6Hs1" + "Jb5Gc0FAKEdemo"


def planted_secrets() -> dict[str, str]:
    """The three fake values, by where they are planted (for the tests: none may reach the database)."""
    _key_id, secret_key = _fake_aws_key_pair()
    return {"config/aws.yml": secret_key, ".github/workflows/deploy.yml": _fake_github_token(),
            ".env (removed)": _fake_signing_secret()}


def _github_deploy() -> str:
    return f"""name: Deploy payments-api
on:
  schedule:
    - cron: "30 2 * * *"
  push:
    branches: [main]
permissions:
  contents: write
  id-token: write
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - uses: actions/checkout@v4
      - name: Deploy to eu-west-1
        env:
          DEPLOY_TOKEN: ${{{{ secrets.DEPLOY_TOKEN }}}}
          DB_PASSWORD: ${{{{ secrets.PAYMENTS_DB_PASSWORD }}}}
          PACKAGES_TOKEN: {_fake_github_token()}
        run: ./deploy.sh --region eu-west-1
"""


GITLAB_CI = """stages: [test, export]
test:
  stage: test
  script:
    - make test
nightly-ledger-export:
  stage: export
  rules:
    - if: '$CI_PIPELINE_SOURCE == "schedule"'
  script:
    - ./export-ledger.sh --token "$LEDGER_EXPORT_TOKEN"
"""

JENKINSFILE = """pipeline {
  agent any
  triggers {
    cron('H 4 * * *')
  }
  environment {
    REGISTRY = credentials('registry-push')
  }
  stages {
    stage('Release') {
      steps {
        withCredentials([usernamePassword(credentialsId: 'nexus-deployer',
                                          usernameVariable: 'U', passwordVariable: 'P')]) {
          sh './release.sh'
        }
      }
    }
  }
}
"""

K8S_CRONJOB = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: settlement-reporter
  namespace: payments
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: settlement-reporter-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: settlement-reporter
    namespace: payments
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: settlement-report
  namespace: payments
spec:
  schedule: "0 5 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          serviceAccountName: settlement-reporter
          containers:
            - name: report
              image: registry.acme.example/settlement-report:2.3
              env:
                - name: DB_PASSWORD
                  valueFrom:
                    secretKeyRef:
                      name: payments-db
                      key: password
          restartPolicy: OnFailure
"""


def _aws_config() -> str:
    key_id, secret_key = _fake_aws_key_pair()
    return f"""# Settlement uploads (FAKE demo values planted for Steward's discovery demo).
aws:
  region: eu-west-1
  bucket: acme-settlements
  aws_access_key_id: "{key_id}"
  aws_secret_access_key: "{secret_key}"
"""


def demo_commits() -> list[dict[str, str | None]]:
    """The demo repository's history: each commit a change set (path -> content; None deletes)."""
    return [
        {"README.md": "# payments-api\n\nCard and bank payment API.\n", "app/main.py": "print('payments')\n",
         ".env": f"LEDGER_SIGNING_SECRET={_fake_signing_secret()}\n"},
        {".github/workflows/deploy.yml": _github_deploy(), ".gitlab-ci.yml": GITLAB_CI,
         "config/aws.yml": _aws_config()},
        {".env": None, "Jenkinsfile": JENKINSFILE, "k8s/settlement-cronjob.yaml": K8S_CRONJOB},
    ]


def write_demo_repository(path: Path) -> list[str]:
    """(Re)write the bare demo repository at path; returns its commit ids, oldest first."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    repo = Repo.init_bare(str(path))
    files: dict[bytes, bytes] = {}
    parents: list[bytes] = []
    ids = []
    for number, changes in enumerate(demo_commits()):
        for name, content in changes.items():
            if content is None:
                files.pop(name.encode(), None)
                continue
            blob = Blob.from_string(content.encode())
            repo.object_store.add_object(blob)
            files[name.encode()] = blob.id
        commit = Commit()
        commit.tree = commit_tree(repo.object_store, [(p, sha, 0o100644) for p, sha in sorted(files.items())])
        commit.parents = parents
        commit.author = commit.committer = AUTHOR
        commit.author_time = commit.commit_time = FIRST_COMMIT_TIME + number * 86_400
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = [b"Payments API\n", b"Deploy, export and upload settings\n",
                          b"Release pipeline and settlement report; drop .env\n"][number]
        repo.object_store.add_object(commit)
        parents = [commit.id]
        ids.append(commit.id.decode())
    repo.refs[b"refs/heads/main"] = parents[0]
    repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    repo.close()
    return ids


def _actor() -> Actor:
    return Actor.system(task_id=TASK_ID, label=TASK_ID)


def _source(*, name: str, data: dict) -> DiscoverySource:
    """Register the source, or bring an existing one of that name to these settings."""
    existing = DiscoverySource.objects.filter(name=name).first()
    if existing is None:
        return discovery_source_create(actor=_actor(), data={"name": name, **data})
    return discovery_source_update(actor=_actor(), source=existing, data=data)


def _run_once(source: DiscoverySource) -> DiscoveryRun:
    """A run requested and executed here, synchronously (its outbox message finds it finished: no-op)."""
    run = discovery_run_request(actor=_actor(), source=source, trigger="seed_demo")
    return discovery_run_execute(run_id=run.pk, task_id=TASK_ID)


def _summary(run: DiscoveryRun) -> dict:
    items = DiscoveredItem.objects.filter(source=run.source)
    return {"source": run.source.name, "status": run.status, "errors": run.errors,
            "items": items.count(), "workflows": items.filter(kind="workflow").count(),
            "hard_coded_secrets": items.filter(kind="hard_coded_secret").count(),
            "undeclared": items.filter(reconciliation="undeclared").count(),
            "missing": items.filter(reconciliation="missing").count()}


def seed_demo_discovery(*, var_dir: Path | None = None) -> dict:
    """Write the demo repository, register it as a source of the payments-api system and run it once."""
    path = Path(var_dir or settings.VAR_DIR) / "demo" / "repositories" / f"{REPOSITORY}.git"
    write_demo_repository(path)
    system = System.objects.filter(name=SYSTEM).first()
    source = _source(name=REPOSITORY_SOURCE, data={
        "kind": "repository", "settings": {"path": str(path), "name": REPOSITORY}, "system": system,
        "schedule_seconds": 6 * 3600})
    return _summary(_run_once(source))


def seed_demo_discovery_openbao() -> dict:
    """The demo KV store as an openbao source (metadata only), run once, when the demo OpenBao answers."""
    store = SecretStore.objects.filter(name=KV_STORE).first()
    if store is None:
        return {"skipped": True, "reason": f"no secret store named {KV_STORE}"}
    if not store.address or not openbao_answers(store.address):
        return {"skipped": True, "reason": f"OpenBao does not answer at {store.address or '(no address)'}"}
    mount = str((store.settings or {}).get("mount") or "secret")
    source = _source(name=OPENBAO_SOURCE, data={
        "kind": "openbao", "settings": {"kv_mounts": [mount], "token_accessors": True}, "store": store,
        "credential_env_var": store.credential_env_var, "schedule_seconds": 6 * 3600})
    return {"skipped": False, **_summary(_run_once(source))}
