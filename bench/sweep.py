"""Time a full posture sweep over a large estate on PostgreSQL, against the checks' bare SQL.

Usage: .venv/bin/python bench/sweep.py [--credentials 1000000] [--workflows 100000]
           [--database-url postgres://postgres@127.0.0.1:5432/steward_bench] [--schema syncdb|migrate] [--reuse]

Creates (or empties) the benchmark database and builds its schema: `--schema migrate` runs the
project's migrations; `--schema syncdb` (the default, for use while the checks models have no
migration yet) creates every table straight from the models, as `pytest --nomigrations` does.
The estate is generated in the database (INSERT ... SELECT generate_series), with a few per cent
of objects failing each check. Then it times:
  bare   the checks' failing-set queries alone, rows fetched (the floor any sweep pays),
  cold   the first sweep, which opens every finding (one audit event each),
  steady a sweep with nothing changed (the periodic case),
  churn  a sweep after 1 % of the credentials changed (some fixed, some broken).
and prints per-check figures, the steady/bare ratio and the broker messages per sweep.
Targets: a full sweep <= 120 s, a few dozen broker messages at most, <= 5x the bare SQL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PEOPLE, TEAMS, SYSTEMS = 2000, 200, 2000


class DisableMigrations:
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


def reset_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str, schema: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if schema == "syncdb":
        from django.conf import settings

        settings.MIGRATION_MODULES = DisableMigrations()
    import django

    django.setup()


def build_schema(url: str, schema: str) -> None:
    from django.core.management import call_command

    if schema == "migrate":
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True,
                       env={**os.environ, "DATABASE_URL": url})
    else:
        call_command("migrate", run_syncdb=True, verbosity=0)


# Generation: one INSERT ... SELECT per table. Columns the generator does not name get their model default,
# so fields added by other capabilities do not break the benchmark.


def _literal(value) -> str:
    from django.db import connection
    from psycopg import sql

    connection.ensure_connection()
    return sql.Literal(value).as_string(connection.connection)


def _default_sql(field) -> str:
    from django.db import models

    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return "now()"
    if field.has_default():
        value = field.get_default()
        if isinstance(field, models.JSONField):
            return _literal(json.dumps(value)) + "::jsonb"
        return "NULL" if value is None else _literal(value)
    if field.null:
        return "NULL"
    if isinstance(field, models.JSONField):
        return "'{}'::jsonb"
    if isinstance(field, models.CharField | models.TextField):
        return "''"
    if isinstance(field, models.BooleanField):
        return "false"
    raise ValueError(f"{field.model.__name__}.{field.name}: no value and no default")


def insert_select(model, values: dict[str, str], source: str) -> int:
    """INSERT INTO model's table SELECT values FROM source; other columns get their model default."""
    from django.db import connection

    columns, exprs = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        exprs.append(values[field.column] if field.column in values else _default_sql(field))
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(exprs)} FROM {source}"
    with connection.cursor() as cursor:
        cursor.execute(sql)  # no parameters: every value is SQL or a quoted literal
        return cursor.rowcount


def first_id(model) -> int:
    return model.objects.order_by("pk").values_list("pk", flat=True).first()


H = "((g.i::bigint * {k}) % 1000)"  # a deterministic spread of 0..999 per row, one per prime k


def generate(credentials: int, workflows: int) -> dict[str, int]:
    from django.contrib.auth.models import Group
    from django.db import connection

    from governance.models import Binding, Credential, Person, SecretStore, System, Team, Workflow

    started = time.monotonic()
    insert_select(Person, {
        "password": "'!'", "username": "'user' || g.i", "first_name": "'Bench'", "last_name": "'User ' || g.i",
        "email": "'user' || g.i || '@bench.test'", "is_active": f"{H.format(k=7)} >= 20",
        "date_joined": "now()", "status": f"CASE WHEN {H.format(k=7)} < 20 THEN 'departed' ELSE 'active' END",
        "departed_at": f"CASE WHEN {H.format(k=7)} < 20 THEN now() - interval '30 days' END",
        "is_superuser": "false", "is_staff": "false",
    }, f"generate_series(1, {PEOPLE}) AS g(i)")
    insert_select(Group, {"name": "'bench-team-' || g.i"}, f"generate_series(1, {TEAMS}) AS g(i)")
    group0, person0 = first_id(Group), first_id(Person)
    insert_select(Team, {"group_id": f"{group0} + g.i - 1", "name": "'Bench team ' || g.i",
                         "slug": "'bench-team-' || g.i", "manager_id": f"{person0} + g.i * 7"},
                  f"generate_series(1, {TEAMS}) AS g(i)")
    team0 = first_id(Team)
    stores = [SecretStore.objects.create(name=f"bench-{kind}", kind=kind) for kind in (
        "openbao_kv", "openbao_pki", "aws_secrets_manager", "config_file", "cicd_variable")]
    managed, unmanaged = stores[0].pk, stores[3].pk
    owned = {"owner_id": f"CASE WHEN {H.format(k=13)} < 10 THEN NULL ELSE {person0} + (g.i % {PEOPLE}) END",
             "team_id": f"{team0} + (g.i % {TEAMS})", "created_at": "now() - interval '400 days'",
             "updated_at": "now() - interval '400 days'"}
    insert_select(System, {
        **owned, "name": "'sys-' || g.i",
        "lifecycle": "CASE WHEN g.i % 50 = 0 THEN 'retired' ELSE 'active' END",
        "retired_at": "CASE WHEN g.i % 50 = 0 THEN now() - interval '60 days' END",
        "environment": "'prod'", "criticality": "'medium'", "third_party": "g.i % 20 = 0",
        "vendor": "CASE WHEN g.i % 20 = 0 THEN 'Vendor ' || g.i ELSE '' END",
    }, f"generate_series(1, {SYSTEMS}) AS g(i)")
    system0 = first_id(System)
    kinds = "(ARRAY['service_account','api_key','certificate','oauth_client','ssh_key','access_token','password'])"
    kind = f"{kinds}[1 + g.i % 7]"
    insert_select(Credential, {
        **owned, "name": "'cred-' || g.i", "kind": kind, "system_id": f"{system0} + (g.i % {SYSTEMS})",
        "identifier": "'key-' || g.i",
        "store_id": f"CASE WHEN {H.format(k=7919)} < 20 THEN {unmanaged} ELSE {managed} END",
        "store_path": "'secret/data/bench/' || g.i",
        "scopes": f"CASE WHEN {H.format(k=104729)} < 5 THEN '[\"*\"]' ELSE '[\"repo:read\"]' END::jsonb",
        "privilege_level": f"CASE WHEN {H.format(k=1299709)} < 10 THEN 'admin' "
                           f"WHEN {H.format(k=1299709)} < 200 THEN 'write' ELSE 'read' END",
        "issued_at": "now() - interval '400 days'",
        "last_rotated_at": f"now() - (CASE WHEN g.i % 7 = 5 THEN {H.format(k=15485863)} / 40.0 "
                           f"ELSE {H.format(k=15485863)} / 10.0 END) * interval '1 day'",
        "expires_at": f"CASE WHEN g.i % 7 = 2 THEN now() + ({H.format(k=32452843)} - 50) / 2.5 * interval '1 day' END",
        "status": f"CASE WHEN {H.format(k=49979687)} < 20 THEN 'revoked' WHEN {H.format(k=49979687)} < 50 "
                  "THEN 'suspended' ELSE 'active' END",
        "human_use_detected": "g.i % 997 = 3",
        "human_use_evidence": "CASE WHEN g.i % 997 = 3 THEN 'interactive login' ELSE '' END",
        "third_party_reviewed_at": f"CASE WHEN {H.format(k=179424673)} < 300 THEN NULL "
                                   "ELSE now() - interval '30 days' END",
        "last_attested_at": f"now() - {H.format(k=373587883)} / 5.3 * interval '1 day'",
    }, f"generate_series(1, {credentials}) AS g(i)")
    insert_select(Workflow, {
        **owned, "name": "'wf-' || g.i", "description": "''", "kind": "'cicd_pipeline'",
        "platform": "'GitHub Actions'",
        "status": "CASE WHEN g.i % 50 = 0 THEN 'retired' WHEN g.i % 100 = 1 THEN 'suspended' ELSE 'active' END",
        "retired_at": "CASE WHEN g.i % 50 = 0 THEN now() - interval '10 days' END",
        "criticality": "'medium'", "can_authenticate": "true",
        "can_provision": f"{H.format(k=7)} < 50", "can_change": f"{H.format(k=7)} BETWEEN 50 AND 199",
        "can_rotate": "false", "can_revoke": "false",
        "shutdown_procedure": f"CASE WHEN {H.format(k=11)} < 50 THEN '' ELSE 'Disable the pipeline.' END",
        "kill_switch_steps": f"CASE WHEN {H.format(k=11)} < 50 THEN '' ELSE 'Suspend its credentials.' END",
        "last_drilled_at": f"now() - {H.format(k=17)} / 5.3 * interval '1 day'",
        "last_drill_result": f"CASE WHEN {H.format(k=19)} < 10 THEN 'failed' ELSE 'passed' END",
        "last_attested_at": f"now() - {H.format(k=23)} / 5.3 * interval '1 day'",
    }, f"generate_series(1, {workflows}) AS g(i)")
    workflow0, credential0 = first_id(Workflow), first_id(Credential)
    stamp = {"created_at": "now()", "updated_at": "now()", "purpose": "'deploy'", "scopes_used": "'[]'::jsonb"}
    insert_select(Binding, {**stamp, "workflow_id": f"{workflow0} + (c.id % {workflows})", "credential_id": "c.id"},
                  "governance_credential c")
    insert_select(Binding, {**stamp, "workflow_id": f"{workflow0} + ((c.id + 1) % {workflows})",
                            "credential_id": "c.id"}, "governance_credential c WHERE (c.id * 31) % 1000 < 10")
    through = Workflow.systems.through
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {through._meta.db_table} (workflow_id, system_id) SELECT w.id, "
                       f"{system0} + (w.id % {SYSTEMS}) FROM governance_workflow w")
    approvals = _approvals(person0, credential0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"people": PEOPLE, "teams": TEAMS, "systems": SYSTEMS, "credentials": credentials,
            "workflows": workflows, "bindings": Binding.objects.count(), "approved_requests": approvals,
            "seconds": round(time.monotonic() - started, 1)}


def _approvals(person0: int, credential0: int) -> int:
    """Half of the admin credentials were provisioned through a request approved by someone else."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    from governance.models import Credential, System

    try:
        request_model = apps.get_model("governance", "ApprovalRequest")
        decision_model = apps.get_model("governance", "ApprovalDecision")
        policy = apps.get_model("governance", "ApprovalPolicy").objects.create(name="bench")
    except LookupError:
        return 0
    credential_ct, system_ct = ContentType.objects.get_for_model(Credential), ContentType.objects.get_for_model(System)
    insert_select(request_model, {
        "action": "'provision_credential'", "status": "'executed'", "policy_id": str(policy.pk),
        "target_content_type_id": str(system_ct.pk), "target_object_id": "c.system_id::text",
        "result_content_type_id": str(credential_ct.pk), "result_object_id": "c.id::text",
        "requested_by_id": f"{person0} + (c.id % {PEOPLE})", "justification": "'bench'",
        "created_at": "now() - interval '30 days'", "expires_at": "now() - interval '27 days'",
        "decided_at": "now() - interval '29 days'", "executed_at": "now() - interval '29 days'",
    }, "governance_credential c WHERE c.privilege_level = 'admin' AND c.id % 2 = 0")
    return insert_select(decision_model, {
        "request_id": "r.id", "approver_id": f"CASE WHEN r.requested_by_id = {person0} THEN {person0} + 1 "
                                             f"ELSE {person0} END",
        "decision": "'approve'", "comment": "''", "decided_at": "now() - interval '29 days'",
    }, f"{request_model._meta.db_table} r")


def time_bare_sql() -> dict[str, float]:
    from django.db import connection

    from governance.checks import Context, NotEvaluated, all_checks

    ctx, timings = Context.current(), {}
    for code, definition in all_checks().items():
        started = time.monotonic()
        try:
            for queryset in definition.bare_queries(ctx):
                sql, params = queryset.query.sql_with_params()
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()
        except NotEvaluated:
            pass
        timings[code] = time.monotonic() - started
    return timings


def timed_sweep(label: str) -> tuple[float, object]:
    from celery.signals import before_task_publish

    from governance.tasks.checks import sweep_task

    published = []

    def count(**kwargs):
        published.append(kwargs.get("sender"))

    before_task_publish.connect(count)
    started = time.monotonic()
    result = sweep_task.apply(kwargs={"trigger": f"bench-{label}"}).get()  # runs in-process, as a worker would
    elapsed = time.monotonic() - started
    before_task_publish.disconnect(count)
    from governance.models.checks import SweepRun

    run = SweepRun.objects.get(pk=result["sweep_run"])
    run.messages = 1 + len(published)  # the beat message that started it, plus any it published
    return elapsed, run


def batched_append_rate(count: int = 20000) -> tuple[float, bool]:
    """What a batched audit append would achieve (a proposal for governance/audit.py, measured here and
    rolled back): one chain lock and one head read per batch, hashes chained in Python, one bulk INSERT."""
    from django.db import transaction
    from django.utils import timezone

    from governance.audit import compute_event_hash, jsonable, lock_and_read_head
    from governance.checks.estate import verify_after
    from governance.models import AuditEvent

    with transaction.atomic():
        started = time.monotonic()
        head = lock_and_read_head()
        sequence, prev_hash = head
        first, events, now = sequence, [], timezone.now()
        for i in range(count):
            sequence += 1
            event = AuditEvent(
                sequence=sequence, occurred_at=now, actor_kind="system", actor_id=None, actor_label="sweep",
                on_behalf_of_id=None, task_id="bench", action="finding.open", object_type="governance.finding",
                object_id=str(i), object_repr="", summary=f"rotation-age fails for cred-{i}: finding opened",
                changes=jsonable({"state": {"before": "", "after": "open"}}), request_id="", source_address=None,
                prev_hash=prev_hash)
            event.hash = prev_hash = compute_event_hash(event)
            events.append(event)
        AuditEvent.objects.bulk_create(events, batch_size=2000)
        elapsed = time.monotonic() - started
        intact = verify_after(first, head[1]).intact if first else True
        transaction.set_rollback(True)
    return count / elapsed, intact


def churn(credentials: int) -> None:
    """1 % of the credentials change: half get rotated (findings resolve), half fall overdue (findings open)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE governance_credential SET last_rotated_at = now() WHERE id % 200 = 0")
        cursor.execute("UPDATE governance_credential SET last_rotated_at = now() - interval '700 days', "
                       "kind = 'api_key' WHERE id % 200 = 100")


def report(label: str, elapsed: float, run, bare: dict[str, float] | None = None) -> None:
    print(f"\n== {label} sweep: {elapsed:.1f} s, status {run.status}, broker messages {run.messages} ==")
    print(f"{'check':24}{'evaluated':>10}{'failed':>9}{'opened':>8}{'reopen':>8}{'resolved':>9}"
          f"{'eval s':>8}{'audit s':>9}{'total s':>9}" + (f"{'bare s':>8}" if bare else ""))
    for code, c in run.counts.items():
        if c.get("status") != "evaluated":
            print(f"{code:24} not evaluated: {c.get('detail', '')[:60]}")
            continue
        print(f"{code:24}{c['evaluated']:>10}{c['failed']:>9}{c['opened']:>8}{c['reopened']:>8}{c['resolved']:>9}"
              f"{c['evaluate_seconds']:>8.2f}{c['audit_seconds']:>9.2f}{c['seconds']:>9.2f}"
              + (f"{bare.get(code, 0):>8.2f}" if bare else ""))
    for code, error in run.errors.items():
        print(f"{code:24} ERROR {error[:100]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credentials", type=int, default=1_000_000)
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/steward_bench")
    parser.add_argument("--schema", choices=("syncdb", "migrate"), default="syncdb")
    parser.add_argument("--reuse", action="store_true", help="Keep the generated estate (and its findings).")
    args = parser.parse_args()
    if not args.reuse:
        reset_database(args.database_url)
    setup_django(args.database_url, args.schema)
    from governance.audit import Actor, verify_chain
    from governance.services.catalogue import catalogue_load

    if not args.reuse:
        build_schema(args.database_url, args.schema)
        print("estate:", generate(args.credentials, args.workflows), flush=True)
    catalogue_load(actor=Actor.system(task_id="bench"))
    results = {"cold": timed_sweep("cold")}
    report("cold", *results["cold"])
    bare = time_bare_sql()  # on the same data as the steady sweep (the audit trail now holds the events)
    bare_total = sum(bare.values())
    print(f"\nbare SQL of the checks' failing sets: {bare_total:.1f} s", flush=True)
    results["steady"] = timed_sweep("steady")
    report("steady", *results["steady"], bare=bare)
    churn(args.credentials)
    results["churn"] = timed_sweep("churn")
    report("churn", *results["churn"])
    started = time.monotonic()
    verification = verify_chain()
    verify_seconds = time.monotonic() - started
    steady = results["steady"][0]
    audit = sum(c.get("audit_seconds", 0) for c in results["cold"][1].counts.values())
    opened = sum(c.get("opened", 0) for c in results["cold"][1].counts.values())
    print("\n== summary ==")
    print(f"bare SQL {bare_total:.1f} s; sweeps: cold {results['cold'][0]:.1f} s (opened {opened} findings, "
          f"audit appends {audit:.1f} s = {opened / audit if audit else 0:.0f}/s), steady {steady:.1f} s, "
          f"churn {results['churn'][0]:.1f} s")
    cold = results["cold"][0]
    print(f"steady / bare = {steady / bare_total:.2f}x (target <= 5x); steady <= 120 s: "
          f"{'met' if steady <= 120 else 'NOT met'}; cold <= 120 s: {'met' if cold <= 120 else 'NOT met'}")
    print(f"broker messages per sweep: {results['steady'][1].messages} (target: a few dozen at most)")
    rate, intact = batched_append_rate()
    print(f"proposed batched audit append (measured, rolled back): {rate:.0f} events/s, chain "
          f"{'intact' if intact else 'BROKEN'}; the cold sweep's appends would take {opened / rate:.1f} s")
    print(f"audit chain: {'intact' if verification.intact else 'BROKEN'}, {verification.events} events, "
          f"verify_chain {verify_seconds:.1f} s ({verification.events / verify_seconds:.0f} events/s)")


if __name__ == "__main__":
    main()
