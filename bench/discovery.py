"""Time discovery: the repository scan (files/s) and the reconciliation of 100k discovered items on PostgreSQL.

Usage: .venv/bin/python bench/discovery.py [--files 20000] [--ci 2000] [--secrets 200] [--commits 1000]
           [--items 100000] [--database-url postgres://postgres@127.0.0.1:5432/steward_bench_discovery]
           [--workdir DIR] [--skip-scan] [--skip-reconcile]

Scan: writes a git repository with dulwich (--files files in HEAD, of which --ci are CI/CD definitions:
GitHub Actions, GitLab CI, Jenkinsfiles and Kubernetes CronJobs, a quarter each, and --secrets planted
FAKE secrets, a quarter of them removed again so that they are only in the history; --commits commits;
the other files are ordinary code, --dense for the worst case of the secret scan),
then reads it with the repository source twice: the tree alone (history_depth 0) and the tree plus every
commit of history. Prints files/s of each and checks what was found against what was planted.

Reconciliation: creates (or empties) the benchmark database (schema straight from the models, as
bench/sweep.py does), a source and --items discovered items (workflows, identities declared in code, and
hard-coded secrets) against an inventory that declares a third of them, then times reconcile_source cold
(every item changes state) and steady (nothing changed), and items_record of the same items seen again.
Targets: scan >= 1,000 files/s; reconciliation of 100k items <= 30 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCAN_TARGET_FILES_PER_SECOND = 1000
RECONCILE_TARGET_SECONDS = 30.0
AUTHOR = b"Bench <bench@example.invalid>"


# The repository ------------------------------------------------------------------------------------

def fake_secret(number: int) -> str:
    """A fake password, assembled at run time (nothing in this file looks like a secret to a scanner)."""
    return "Bench-" + "Fake-" + f"{number:05d}" + "-q7Xz"


def ci_file(number: int) -> tuple[str, str]:
    """The number-th CI/CD definition: (path inside its service folder, text), four platforms in turn."""
    kind = number % 4
    if kind == 0:
        return f".github/workflows/deploy-{number}.yml", (
            f"name: Deploy {number}\non:\n  schedule:\n    - cron: '{number % 60} 3 * * *'\n  push:\n"
            f"    branches: [main]\npermissions:\n  contents: read\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n"
            f"    steps:\n      - uses: actions/checkout@v4\n      - run: ./deploy.sh\n        env:\n"
            f"          TOKEN: ${{{{ secrets.DEPLOY_TOKEN_{number} }}}}\n")
    if kind == 1:
        return f"pipelines/export-{number}.gitlab-ci.yml", (
            f"stages: [export]\nexport-{number}:\n  stage: export\n  rules:\n"
            f"    - if: '$CI_PIPELINE_SOURCE == \"schedule\"'\n  script:\n"
            f"    - ./export.sh --token \"$EXPORT_TOKEN_{number}\"\n")
    if kind == 2:
        return f"jenkins/release-{number}.jenkinsfile", (
            "pipeline {\n  agent any\n  triggers {\n    cron('H 2 * * *')\n  }\n  environment {\n"
            f"    REGISTRY = credentials('registry-push-{number}')\n  }}\n  stages {{\n    stage('Release') {{\n"
            "      steps {\n        sh './release.sh'\n      }\n    }\n  }\n}\n")
    return f"k8s/cron-{number}.yaml", (
        f"apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: report-{number}\n  namespace: bench\nspec:\n"
        f"  schedule: \"0 {number % 24} * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n"
        f"          serviceAccountName: reporter-{number}\n          containers:\n            - name: report\n"
        f"              image: registry.internal/report:1\n          restartPolicy: OnFailure\n")


def source_file(number: int, *, dense: bool = False) -> str:
    """An ordinary source file of 80 lines. Like real code, a few lines hold words the secret scan must look at
    (token, auth, password: about 3 % of lines, more in every tenth file); --dense makes every handler read a
    token (40 % of lines), the worst case for the scan."""
    lines = [f'"""Module {number} of the bench service."""', "", "import os", "import logging", "",
             "logger = logging.getLogger(__name__)", ""]
    for n in range(18):
        lines.append(f"def handler_{n}(request, limit={n + 10}):")
        if dense or (number % 10 == 0 and n % 6 == 0):
            lines.append(f"    token = os.environ['SERVICE_TOKEN_{n}']  # read at run time, not a literal")
        else:
            lines.append(f"    rows = request.query(limit=limit, offset={n})")
        lines.append(f"    logger.info('handler {n}: %d rows', len(rows) if 'rows' in dir() else 0)")
        lines.append(f"    return {{'status': 'ok', 'n': {n}}}")
    lines.append("def check_auth(request):  # the one auth helper of the module")
    lines.append("    return request.user.is_authenticated")
    return "\n".join(lines) + "\n"


class Trees:
    """Incremental git trees: only the folders a commit touched are written again."""

    def __init__(self, store):
        from dulwich.objects import Tree

        self.store, self.tree_class = store, Tree
        self.entries: dict[str, dict[bytes, tuple[int, bytes]]] = defaultdict(dict)
        self.dirty: set[str] = {""}
        self.root = b""

    def _folders(self, path: str) -> list[str]:
        parts = path.split("/")[:-1]
        return [""] + ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]

    def put(self, path: str, blob_id: bytes | None) -> None:
        folder, name = (path.rsplit("/", 1) if "/" in path else ("", path))
        if blob_id is None:
            self.entries[folder].pop(name.encode(), None)
        else:
            self.entries[folder][name.encode()] = (0o100644, blob_id)
        self.dirty.update(self._folders(path))

    def build(self) -> bytes:
        for folder in sorted(self.dirty, key=lambda f: f.count("/") + bool(f), reverse=True):
            tree = self.tree_class()
            for name, (mode, sha) in self.entries[folder].items():
                tree.add(name, mode, sha)
            self.store.add_object(tree)
            if folder:
                parent, name = (folder.rsplit("/", 1) if "/" in folder else ("", folder))
                self.entries[parent][name.encode()] = (0o040000, tree.id)
            else:
                self.root = tree.id
        self.dirty = set()
        return self.root  # a commit that changed nothing keeps its parent's tree


def write_repository(path: Path, *, files: int, ci: int, secrets: int, commits: int, dense: bool = False) -> dict:
    """The benchmark repository; returns what was planted."""
    from dulwich.objects import Blob, Commit
    from dulwich.repo import Repo

    path.mkdir(parents=True, exist_ok=True)
    repo = Repo.init_bare(str(path))
    trees = Trees(repo.object_store)
    services = max(1, files // 100)
    plan: list[tuple[str, str]] = []
    for number in range(files):
        folder = f"services/svc{number % services:04d}"
        if number < ci:
            name, text = ci_file(number)
        elif number < ci + secrets:
            name, text = f"config/app-{number}.ini", f"[db]\nhost = db{number}.internal\npassword = " \
                                                     f"{fake_secret(number - ci)}\n"
        else:
            name, text = f"app/module_{number}.py", source_file(number, dense=dense)
        plan.append((f"{folder}/{name}", text))
    removed = {plan[ci + n][0] for n in range(0, secrets, 4)}  # a quarter of the secrets: removed later
    per_commit = max(1, -(-files // max(1, commits - 1)))
    parents: list[bytes] = []
    made = 0
    pending_removal = sorted(removed)
    for number in range(commits):
        chunk = plan[number * per_commit:(number + 1) * per_commit]
        for file_path, text in chunk:
            blob = Blob.from_string(text.encode())
            repo.object_store.add_object(blob)
            trees.put(file_path, blob.id)
        if not chunk and pending_removal:  # the commits after every file exists remove the planted ones
            for file_path in pending_removal[:max(1, len(removed) // max(1, commits - number))]:
                trees.put(file_path, None)
            pending_removal = pending_removal[max(1, len(removed) // max(1, commits - number)):]
        commit = Commit()
        commit.tree = trees.build()
        commit.parents = parents
        commit.author = commit.committer = AUTHOR
        commit.author_time = commit.commit_time = 1_700_000_000 + number * 60
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = f"change {number}\n".encode()
        repo.object_store.add_object(commit)
        parents = [commit.id]
        made += 1
    for file_path in pending_removal:  # whatever is left, in one last commit
        trees.put(file_path, None)
    if pending_removal:
        commit = Commit()
        commit.tree, commit.parents = trees.build(), parents
        commit.author = commit.committer = AUTHOR
        commit.author_time = commit.commit_time = 1_700_000_000 + made * 60
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding, commit.message = b"UTF-8", b"last removals\n"
        repo.object_store.add_object(commit)
        parents, made = [commit.id], made + 1
    repo.refs[b"refs/heads/main"] = parents[0]
    repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    repo.close()
    return {"files_in_head": files - len(removed), "ci": ci, "secrets": secrets, "removed": len(removed),
            "commits": made}


def scan(path: Path, *, history_depth: int) -> tuple[float, object, list]:
    from governance.discovery.sources.repository import RepositorySettings, RepositorySource
    from governance.models.discovery import DiscoverySource

    model = DiscoverySource(name="bench", kind="repository",
                            settings={"path": str(path), "history_depth": history_depth})
    source = RepositorySource(RepositorySettings.from_source(model))
    started = time.monotonic()
    items = list(source.observe())
    return time.monotonic() - started, source.stats, items


def bench_scan(args) -> bool:
    from governance.discovery.parsers.secrets import CANDIDATE
    from governance.models.discovery import DiscoveredKind

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="steward-bench-discovery-"))
    path = workdir / "bench.git"
    started = time.monotonic()
    planted = write_repository(path, files=args.files, ci=args.ci, secrets=args.secrets, commits=args.commits,
                               dense=args.dense)
    print(f"repository: {planted} written in {time.monotonic() - started:.1f} s at {path}", flush=True)
    sample = [source_file(n, dense=args.dense) for n in range(100)]
    candidate = sum(bool(CANDIDATE.search(line)) for text in sample for line in text.splitlines())
    print(f"source files: {100 * candidate / sum(len(t.splitlines()) for t in sample):.1f} % of lines hold a word "
          "the secret scan looks at twice", flush=True)
    met = True
    for label, depth in (("tree only", 0), ("tree + history", planted["commits"])):
        seconds, stats, items = scan(path, history_depth=depth)
        kinds = defaultdict(int)
        for item in items:
            kinds[item.kind] += 1
        scanned = stats.files + stats.history_blobs
        rate = scanned / seconds if seconds else 0.0
        print(f"\n== scan, {label}: {seconds:.1f} s; {stats.files} files in the tree + {stats.history_blobs} "
              f"blobs of {stats.commits} commits = {rate:.0f} files/s (target >= {SCAN_TARGET_FILES_PER_SECOND}) ==")
        print(f"found: {dict(sorted(kinds.items()))}; definitions parsed {stats.definitions}, parse errors "
              f"{len(stats.parse_errors)}")
        want_secrets = planted["secrets"] - (planted["removed"] if depth == 0 else 0)
        workflows, secrets = kinds[DiscoveredKind.WORKFLOW], kinds[DiscoveredKind.HARD_CODED_SECRET]
        print(f"workflows {workflows} (planted {planted['ci']}); hard-coded secrets {secrets} "
              f"(planted and reachable {want_secrets})")
        met = met and rate >= SCAN_TARGET_FILES_PER_SECOND
    return met


# Reconciliation ----------------------------------------------------------------------------------

def bench_reconcile(args) -> bool:
    from bench.sweep import build_schema, reset_database, setup_django

    reset_database(args.database_url)
    setup_django(args.database_url, "syncdb")
    build_schema(args.database_url, "syncdb")
    from django.db import transaction
    from django.utils import timezone

    from governance.audit import Actor
    from governance.discovery.reconcile import reconcile_source
    from governance.discovery.services import items_record
    from governance.discovery.sources.base import Observed
    from governance.models import Credential, Person, System, Workflow
    from governance.models.discovery import DiscoveredItem, DiscoverySource

    now = timezone.now()
    owner = Person.objects.create(username="bench-owner")
    system = System.objects.create(name="bench-system", owner=owner)
    source = DiscoverySource.objects.create(name="bench repository", kind="repository",
                                            settings={"path": "/srv/bench.git"}, system=system)
    n = args.items
    workflows, secrets = n // 5, n // 5
    identities = n - workflows - secrets
    started = time.monotonic()
    observed = []
    for i in range(workflows):
        observed.append(Observed(kind="workflow", natural_key=f"services/svc{i}/deploy.yml", name=f"bench: deploy {i}",
                                 facts={"platform": "GitHub Actions", "triggers": ["schedule"],
                                        "secrets": [f"DEPLOY_TOKEN_{i}"]}))
    for i in range(identities):
        observed.append(Observed(kind="iac_identity", natural_key=f"infra/iam.tf#aws_iam_user.bench_{i}",
                                 name=f"bench: bench_{i}", facts={"identity": f"bench-user-{i}",
                                                                  "type": "aws_iam_user"}))
    for i in range(secrets):
        observed.append(Observed(kind="hard_coded_secret", natural_key=f"config/app-{i}.ini:{i:032x}",
                                 name=f"bench: config/app-{i}.ini:3", fingerprint=f"{i:064x}",
                                 facts={"path": f"config/app-{i}.ini", "line": 3, "detector": "a password"}))
    actor = Actor.system(task_id="bench")
    with transaction.atomic():
        first = items_record(actor=actor, source=source, observed=observed, now=now)
    record_cold = time.monotonic() - started
    # The inventory declares a third: workflows by name, identities by identifier.
    Workflow.objects.bulk_create([Workflow(name=f"bench: deploy {i}", owner=owner, kind="cicd_pipeline",
                                           platform="GitHub Actions") for i in range(0, workflows, 3)],
                                 batch_size=5000)
    Credential.objects.bulk_create([Credential(name=f"bench-user-{i}", kind="service_account", system=system,
                                               identifier=f"bench-user-{i}", owner=owner, status="active")
                                    for i in range(0, identities, 3)], batch_size=5000)
    print(f"\n{DiscoveredItem.objects.count()} discovered items recorded in {record_cold:.1f} s ({first}); "
          f"inventory: {Workflow.objects.count()} workflows, {Credential.objects.count()} credentials", flush=True)
    figures = {}
    for label in ("cold", "steady"):
        started = time.monotonic()
        with transaction.atomic():
            counts = reconcile_source(actor=actor, source=source, now=timezone.now())
        figures[label] = time.monotonic() - started
        print(f"== reconcile_source, {label}: {figures[label]:.1f} s; {counts} ==", flush=True)
    started = time.monotonic()
    with transaction.atomic():
        again = items_record(actor=actor, source=source, observed=observed, now=timezone.now())
    print(f"== items_record, the same {n} items seen again: {time.monotonic() - started:.1f} s; {again} ==")
    met = figures["cold"] <= RECONCILE_TARGET_SECONDS and figures["steady"] <= RECONCILE_TARGET_SECONDS
    print(f"reconciliation of {n} items: cold {figures['cold']:.1f} s, steady {figures['steady']:.1f} s "
          f"(target <= {RECONCILE_TARGET_SECONDS:.0f} s): {'met' if met else 'NOT met'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--ci", type=int, default=2_000)
    parser.add_argument("--secrets", type=int, default=200)
    parser.add_argument("--commits", type=int, default=1_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/steward_bench_discovery")
    parser.add_argument("--workdir", help="Where the repository is written (default: a new temporary folder).")
    parser.add_argument("--dense", action="store_true",
                        help="Worst case: 40 %% of the source lines mention a token (default: about 3 %%).")
    parser.add_argument("--skip-scan", action="store_true")
    parser.add_argument("--skip-reconcile", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    results = {}
    if not args.skip_reconcile:
        results["reconciliation"] = bench_reconcile(args)  # sets Django up on the benchmark database
    else:
        import django

        django.setup()
    if not args.skip_scan:
        results["scan"] = bench_scan(args)
    print("\n== summary ==")
    for name, met in results.items():
        print(f"{name}: target {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
