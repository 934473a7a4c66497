"""Time every page people use at a million credentials, for an owner, an approver, an auditor and a security admin.

Usage: .venv/bin/python bench/portal_scale.py [--credentials 1000000] [--workflows 100000]
           [--database-url postgres://postgres@127.0.0.1:5432/steward_bench_portal] [--reuse] [--repeat 5]
           [--build-only] [--only owner,auditor]

Builds the estate of bench/sweep.py (`--schema migrate`: the project's migrations, its generator) in its
own database, then adds what a real portal has on top of it: team-group view and change grants on every
credential, workflow and system (as governance.permissions.grant_team gives them), each person in one
team's group, an approvers group on the approval policy with a few hundred pending requests, and one
auditor and one security admin. It sweeps once, so findings and the per-sweep summaries exist.
`--reuse` keeps an estate built before and only applies new migrations (new indexes) and sweeps again
when no sweep has finished yet, or none has written the per-sweep summaries (an estate built before them).

Then, in-process with Django's test client (the whole request: middleware, views, templates), it
requests each page --repeat times per persona after one warm-up and prints p50 / p95 and the
number of SQL queries per page, and checks that the owner still gets 404 on another team's objects.
Targets: p95 <= 300 ms for every page and persona, API lists <= 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sweep  # noqa: E402  (bench/sweep.py: the estate generator this benchmark builds on)

PAGE_TARGET_MS, API_TARGET_MS = 300, 100
PENDING_REQUESTS = 300


def add_grants_and_membership() -> dict[str, int]:
    """Team-group view/change grants on every credential, workflow and system; each person in one team's group."""
    from django.contrib.auth.models import Permission
    from django.db import connection

    from governance.models import (
        Credential,
        CredentialGroupObjectPermission,
        Person,
        System,
        SystemGroupObjectPermission,
        Team,
        Workflow,
        WorkflowGroupObjectPermission,
    )

    counts = {}
    with connection.cursor() as cursor:
        for model, grant in ((Credential, CredentialGroupObjectPermission), (Workflow, WorkflowGroupObjectPermission),
                             (System, SystemGroupObjectPermission)):
            name = model._meta.model_name
            for action in ("view", "change"):
                permission = Permission.objects.get(content_type__app_label="governance", codename=f"{action}_{name}")
                cursor.execute(
                    f"INSERT INTO {grant._meta.db_table} (permission_id, group_id, content_object_id) "
                    f"SELECT %s, t.group_id, o.id FROM {model._meta.db_table} o "
                    f"JOIN {Team._meta.db_table} t ON t.id = o.team_id", [permission.pk])
                counts[f"{name}_{action}_grants"] = cursor.rowcount
        person0, team0 = sweep.first_id(Person), sweep.first_id(Team)
        # Person i is in the group of team (i % TEAMS): the team that backs up what person i owns.
        cursor.execute(
            f"INSERT INTO {Person.groups.through._meta.db_table} (person_id, group_id) "
            f"SELECT p.id, t.group_id FROM {Person._meta.db_table} p "
            f"JOIN {Team._meta.db_table} t ON t.id = %s + ((p.id - %s + 1) %% %s)",
            [team0, person0, sweep.TEAMS])
        counts["memberships"] = cursor.rowcount
        cursor.execute("ANALYZE")
    return counts


def add_roles_and_queue() -> dict[str, int]:
    """An auditor, a security admin, and an approvers group on the bench policy with pending requests."""
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from governance import roles
    from governance.models import Credential, Person
    from governance.models.approvals import ApprovalPolicy, ApprovalRequest

    auditors, _ = Group.objects.get_or_create(name=roles.AUDITORS)
    admins, _ = Group.objects.get_or_create(name=roles.SECURITY_ADMINS)
    approvers, _ = Group.objects.get_or_create(name="bench-approvers")
    Person.objects.create_user("bench-auditor", password="!", first_name="Bench", last_name="Auditor").groups.add(
        auditors)
    Person.objects.create_user("bench-admin", password="!", first_name="Bench", last_name="Admin").groups.add(admins)
    approver = Person.objects.create_user("bench-approver", password="!", first_name="Bench", last_name="Approver")
    approver.groups.add(approvers)
    policy = ApprovalPolicy.objects.filter(name="bench").first()
    if policy is None:
        return {"pending_requests": 0}
    policy.approver_groups.add(approvers)
    credential_ct = ContentType.objects.get_for_model(Credential)
    requester = Person.objects.filter(status="active").order_by("pk").first()
    now = timezone.now()
    targets = Credential.objects.order_by("pk").values_list("pk", flat=True)[:PENDING_REQUESTS * 1000:1000]
    ApprovalRequest.objects.bulk_create([
        ApprovalRequest(action="privileged_scope_change", status="pending", policy=policy,
                        target_content_type=credential_ct, target_object_id=str(pk), requested_by=requester,
                        justification="bench", payload={"scopes": ["repo:write"]}, created_at=now,
                        expires_at=now + timedelta(days=3))
        for pk in targets])
    return {"pending_requests": len(targets)}


def ensure_swept() -> None:
    from governance.models.checks import CheckSummary, SweepRun

    if not SweepRun.objects.filter(finished_at__isnull=False).exists() or not CheckSummary.objects.exists():
        elapsed, run = sweep.timed_sweep("portal")
        print(f"sweep: {elapsed:.1f} s, status {run.status}", flush=True)


def personas() -> dict[str, object]:
    from governance.models import Credential, Person

    # The owner: the active owner of the first credential; person i is in the group of team i % TEAMS.
    owner_id = (Credential.objects.filter(owner__status="active", owner__is_active=True).order_by("pk")
                .values_list("owner_id", flat=True).first())
    return {
        "owner": Person.objects.get(pk=owner_id),
        "approver": Person.objects.get(username="bench-approver"),
        "auditor": Person.objects.get(username="bench-auditor"),
        "security admin": Person.objects.get(username="bench-admin"),
    }


def pages_for(persona: str, user) -> list[tuple[str, str]]:
    """(label, url) of every page timed for a persona; detail pages pick an object the persona may see."""
    from governance.models import Credential, System, Workflow
    from governance.models.checks import Finding
    from governance.permissions import restrict

    credential = restrict(Credential.objects.all(), user).order_by("pk").first()
    workflow = restrict(Workflow.objects.all(), user).order_by("pk").first()
    system = restrict(System.objects.all(), user).order_by("pk").first()
    finding = restrict(Finding.objects.all(), user).order_by("pk").first()
    pages = [
        ("home", "/"),
        ("credentials", "/credentials/"),
        ("credentials page 50", "/credentials/?page=50"),
        ("credentials by rotation", "/credentials/?sort=-last_rotated_at"),
        ("credentials ?q=cred-4242", "/credentials/?q=cred-4242"),
        ("workflows", "/workflows/"),
        ("systems", "/systems/"),
        ("findings", "/findings/"),
        ("posture", "/posture/"),
        ("frameworks", "/frameworks/"),
        ("framework owasp", "/frameworks/owasp_nhi_top10_2025/"),
        ("search ?q=cred-99", "/search/?q=cred-99"),
        ("approvals queue", "/approvals/"),
        ("approvals mine", "/approvals/mine/"),
        ("attestations", "/attestations/"),
        ("report form", "/reports/"),
        ("api credentials", "/api/v1/credentials/"),
        ("api workflows", "/api/v1/workflows/"),
        ("api systems", "/api/v1/systems/"),
        ("api findings", "/api/v1/findings/"),
        ("api approval requests", "/api/v1/approval-requests/"),
        ("api attestation items", "/api/v1/attestation-items/"),
    ]
    if credential is not None:
        pages.append(("credential detail", f"/credentials/{credential.pk}/"))
    if workflow is not None:
        pages.append(("workflow detail", f"/workflows/{workflow.pk}/"))
    if system is not None:
        pages.append(("system detail", f"/systems/{system.pk}/"))
    if finding is not None:
        pages.append(("finding detail", f"/findings/{finding.pk}/"))
    return pages


def time_page(client, url: str, repeat: int) -> tuple[int, list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up (and the status we report)
    timings, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        queries = len(captured.captured_queries)
    return response.status_code, timings, queries


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def check_isolation(client, owner) -> list[str]:
    """The owner must get 404 on another team's credential, workflow and system (and their API records)."""
    from django.db.models import Q

    from governance.models import Credential, System, Workflow

    failures = []
    group_ids = list(owner.groups.values_list("pk", flat=True))
    for model, prefix, api in ((Credential, "credentials", "credentials"), (Workflow, "workflows", "workflows"),
                               (System, "systems", "systems")):
        other = (model.objects.exclude(Q(owner=owner) | Q(team__group__in=group_ids)).order_by("pk").first())
        if other is None:
            continue
        for url in (f"/{prefix}/{other.pk}/", f"/api/v1/{api}/{other.pk}/"):
            status = client.get(url).status_code
            if status != 404:
                failures.append(f"{url}: {status}, expected 404")
    return failures


def analyse() -> None:
    """VACUUM ANALYZE, then a prewarm. A production database's autovacuum keeps statistics current; a freshly
    bulk-loaded estate has none, and the planner then misjudges every visibility subquery by three orders of
    magnitude."""
    from django.db import DatabaseError, connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"vacuum analyze: {time.monotonic() - started:.1f} s", flush=True)
    # A portal in use has its tables and indexes in memory; a benchmark run after another big job (a 1M
    # report estate) would otherwise time the disk: every page 1.5x slower, and jittery.
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            cursor.execute("SELECT sum(pg_prewarm(c.oid::regclass, 'read')) FROM pg_class c JOIN pg_namespace n "
                           "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')")
            blocks = cursor.fetchone()[0]
        print(f"prewarm: {blocks * 8 // 1024} MB read into the page cache in {time.monotonic() - started:.1f} s",
              flush=True)
    except DatabaseError as error:
        print(f"prewarm skipped (pg_prewarm: {error}); the first pages may time the disk", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credentials", type=int, default=1_000_000)
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/steward_bench_portal")
    parser.add_argument("--reuse", action="store_true", help="Keep the estate built by an earlier run.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--only", default="", help="Comma-separated personas to time (default: all four).")
    args = parser.parse_args()
    if not args.reuse:
        sweep.reset_database(args.database_url)
    sweep.setup_django(args.database_url, "migrate")
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from governance.audit import Actor
    from governance.services.catalogue import catalogue_load

    if args.reuse:
        call_command("migrate", verbosity=0)  # new indexes of the code under test
    else:
        started = time.monotonic()
        sweep.build_schema(args.database_url, "migrate")
        print("estate:", sweep.generate(args.credentials, args.workflows), flush=True)
        print("grants:", add_grants_and_membership(), flush=True)
        print("roles:", add_roles_and_queue(), f"({time.monotonic() - started:.0f} s in all)", flush=True)
        catalogue_load(actor=Actor.system(task_id="bench"))
    ensure_swept()
    analyse()
    if args.build_only:
        return

    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    rows, misses = [], []
    for persona, user in personas().items():
        if wanted and persona not in wanted:
            continue
        client = Client()
        client.force_login(user)
        print(f"\n== {persona} ({user.username}) ==", flush=True)
        print(f"{'page':28}{'status':>7}{'p50 ms':>9}{'p95 ms':>9}{'queries':>9}  target")
        for label, url in pages_for(persona, user):
            status, timings, queries = time_page(client, url, args.repeat)
            target = API_TARGET_MS if url.startswith("/api/") else PAGE_TARGET_MS
            p50, high = statistics.median(timings), p95(timings)
            met = high <= target
            if not met:
                misses.append(f"{persona} {label} p95 {high:.0f} ms > {target} ms")
            rows.append((persona, label, status, p50, high, queries))
            print(f"{label:28}{status:>7}{p50:>9.0f}{high:>9.0f}{queries:>9}  {'met' if met else 'NOT met'} "
                  f"(<= {target})", flush=True)
        if persona == "owner":
            failures = check_isolation(client, user)
            print("isolation: owner gets 404 on another team's objects:", "yes" if not failures else failures)
            misses.extend(failures)
    print("\n== summary ==")
    print(f"{len(rows)} page timings; {len(misses)} over target or failing")
    for miss in misses:
        print("  ", miss)


if __name__ == "__main__":
    main()
