"""OpenBao KV rotations per second through the job path, and where the time goes (OpenBao vs Steward).

Usage: .venv/bin/python bench/rotation.py [--rotations 1000] [--path batch|single|both]
       [--database-url postgres://postgres@127.0.0.1:5432/steward_bench_rotation | sqlite:///...]
       .venv/bin/python bench/rotation.py --connector postgres [--rotations 300] [--workers 2] [--rounds 3]

--connector postgres: PostgreSQL login roles on a private scram-sha-256 cluster, Steward's batch
path against OpenBao's database secrets engine (static roles, rotate-role) on the same roles in the
same run; see bench/rotation_postgres.py. What follows is the default, --connector kv.

It starts its own OpenBao dev server (bao server -dev, in memory, on a free loopback port) and
a fresh database (tables from the models, as the test runner makes them; PostgreSQL when it
answers on 127.0.0.1:5432, else SQLite), registers N overdue credentials with a KV secret each,
and lets the rotation sweep (rotation_schedule_due) create their N jobs. Then one worker runs
them through the real Celery task functions, called in-process with Task.apply() (Celery's eager
tracer: the code a worker runs for a message, without the broker round trip; the sweep's own
messages go to an in-memory broker and are dropped):
- batch: rotation_batch_run, the task the sweep sends (50 job ids per message): claims and
  records in two commits per message;
- single: rotation_job_run, one job per message (manual rotations and retries): two commits
  per rotation.
Each rotation claims its job, reads the secret, writes a new version with check-and-set, reads
it back to verify, and records the attempt, the credential's new version, the observation and
one audit event (hash-chained) per credential.

Timing: every HTTP request to OpenBao is timed at requests.Session.request (OpenBao, the
loopback network and the HTTP client library: what talking to OpenBao costs); every SQL
statement through Django's execute wrapper; audit_append and audit_append_many (the batch path's
one insert per message) as called by the lifecycle services.
Steward's own overhead is everything that is not OpenBao: its database statements, the ORM, the
audit chain, the task tracer and the connector's own Python. BENCH_VERBOSE=1 lists the costliest
statements; BENCH_PROFILE=tottime|cumtime prints a cProfile of the measured part
(BENCH_CALLERS=name adds who called the functions matching name).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TOKEN_ENV = "STEWARD_BENCH_OPENBAO_TOKEN"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Timer:
    def __init__(self):
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connector", choices=("kv", "postgres"), default="kv",
                        help="OpenBao KV secrets (default), or PostgreSQL login roles compared with OpenBao's "
                             "database secrets engine")
    parser.add_argument("--rotations", type=int, default=None, help="1000 for kv, 300 for postgres")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="default: postgres://postgres@127.0.0.1:5432/steward_bench_rotation (kv) or "
                             "steward_bench_rot (postgres) when PostgreSQL answers there, else SQLite")
    parser.add_argument("--path", choices=("batch", "single", "both"), default="both",
                        help="kv: the sweep's batched job path, one job per message, or both (default)")
    parser.add_argument("--workers", type=int, default=1,
                        help="postgres: also run the batch path in this many processes and report the speed-up")
    parser.add_argument("--rounds", type=int, default=3,
                        help="postgres: rounds of Steward then OpenBao on the same roles (the medians compared)")
    args = parser.parse_args()
    if args.database_url is None:
        name = "steward_bench_rot" if args.connector == "postgres" else "steward_bench_rotation"
        args.database_url = (f"postgres://postgres@127.0.0.1:5432/{name}" if answers("127.0.0.1", 5432)
                             else "sqlite:///" + str(ROOT / "var" / "bench-rotation.sqlite3"))

    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from tests import lifecycle_servers

    server = lifecycle_servers.start_openbao(with_pki=False)
    os.environ[TOKEN_ENV] = server.token
    cluster = None
    try:
        if args.connector == "postgres":
            cluster = lifecycle_servers.start_postgres()
        connection.settings_dict.setdefault("TEST", {})["MIGRATE"] = False
        old_config = setup_databases(verbosity=0, interactive=False)
        try:
            if args.connector == "postgres":
                # bench/rotation_postgres.py imports Django's models at its top: only after django.setup()
                import rotation_postgres  # noqa: E402, I001, PLC0415

                return rotation_postgres.run(args.rotations or 300, args.workers, server, cluster, connection,
                                             rounds=args.rounds)
            paths = ["batch", "single"] if args.path == "both" else [args.path]
            return run(args.rotations or 1000, server, connection, paths)
        finally:
            teardown_databases(old_config, verbosity=0)
    finally:
        if cluster is not None:
            cluster.stop()
        server.stop()


def _estate(count: int, server, prefix: str) -> list[int]:
    """N credentials with a KV secret each, overdue; the rotation sweep makes their jobs."""
    import datetime as dt

    from django.utils import timezone

    from governance.models import Credential, Person, SecretStore, System
    from governance.models.lifecycle import RotationJob, RotationStatus
    from governance.services.rotation import rotation_schedule_due

    owner, _ = Person.objects.get_or_create(username="bench-owner", defaults={"email": "owner@bench.test"})
    system, _ = System.objects.get_or_create(name="bench-system", defaults={"owner": owner})
    store, _ = SecretStore.objects.get_or_create(
        name="bench-openbao", defaults={"kind": "openbao_kv", "address": server.address,
                                        "settings": {"mount": "secret"}, "credential_env_var": TOKEN_ENV})
    old = timezone.now() - dt.timedelta(days=400)
    Credential.objects.bulk_create([
        Credential(name=f"{prefix}-{i}", kind="api_key", system=system, identifier=f"{prefix}-{i}", store=store,
                   store_path=f"secret/data/bench/{prefix}-{i}", store_version="1", owner=owner, last_rotated_at=old)
        for i in range(count)
    ])
    kv = server.client().secrets.kv.v2
    for i in range(count):
        kv.create_or_update_secret(path=f"bench/{prefix}-{i}", secret={"value": f"initial-{i}"}, mount_point="secret")
    started = time.perf_counter()
    summary = rotation_schedule_due()
    print(f"[{prefix}] the sweep scheduled {summary['scheduled']} jobs in {time.perf_counter() - started:.2f} s")
    pending = RotationJob.objects.filter(status=RotationStatus.PENDING, credential__name__startswith=f"{prefix}-")
    return list(pending.order_by("pk").values_list("pk", flat=True))


def _measure(label: str, job_ids: list[int], run_one, connection) -> float:
    import requests

    from governance.models.lifecycle import RotationJob, RotationStatus
    from governance.services import lifecycle as lifecycle_services

    http, sql, audit = Timer(), Timer(), Timer()
    by_statement: dict[str, list[float]] = {}

    def sql_wrapper(execute, statement, params, many, context):
        began = time.perf_counter()
        try:
            return sql.wrap(execute)(statement, params, many, context)
        finally:
            by_statement.setdefault(statement[:90], []).append(time.perf_counter() - began)

    original_request = requests.Session.request
    requests.Session.request = http.wrap(original_request)
    original_audit, original_audit_many = lifecycle_services.audit_append, lifecycle_services.audit_append_many
    lifecycle_services.audit_append = audit.wrap(original_audit)
    lifecycle_services.audit_append_many = audit.wrap(original_audit_many)
    try:
        with connection.execute_wrapper(sql_wrapper):
            profiler = None
            if os.environ.get("BENCH_PROFILE"):
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            started = time.perf_counter()
            run_one(job_ids)
            total = time.perf_counter() - started
            if profiler is not None:
                import pstats

                profiler.disable()
                pstats.Stats(profiler).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(45)
                if os.environ.get("BENCH_CALLERS"):
                    pstats.Stats(profiler).print_callers(os.environ["BENCH_CALLERS"])
                if os.environ.get("BENCH_CALLEES"):
                    pstats.Stats(profiler).print_callees(os.environ["BENCH_CALLEES"])
    finally:
        requests.Session.request = original_request
        lifecycle_services.audit_append = original_audit
        lifecycle_services.audit_append_many = original_audit_many
    n = len(job_ids)
    succeeded = RotationJob.objects.filter(pk__in=job_ids, status=RotationStatus.SUCCEEDED).count()
    steward = total - http.seconds
    print(f"\n{label}: {n} rotations, {succeeded} succeeded (each verified by reading the new version back)")
    print(f"  {n / total:.0f} rotations/s ({1000 * total / n:.2f} ms each; {total:.2f} s in all)")
    print(f"  OpenBao: {http.seconds:.2f} s = {100 * http.seconds / total:.0f} % "
          f"({http.calls / n:.1f} HTTP requests per rotation, {1000 * http.seconds / max(http.calls, 1):.2f} ms each)")
    print(f"  Steward: {steward:.2f} s = {100 * steward / total:.0f} %: database {sql.seconds:.2f} s "
          f"({sql.calls / n:.1f} statements per rotation), Python {steward - sql.seconds:.2f} s "
          "(ORM, audit chain hashing, task tracer, connector)")
    print(f"  of which the audit chain (lock, head, hash, insert; one event per rotation): "
          f"{audit.seconds:.2f} s = {100 * audit.seconds / total:.0f} %")
    if os.environ.get("BENCH_VERBOSE"):
        for statement, times in sorted(by_statement.items(), key=lambda kv: -sum(kv[1]))[:12]:
            print(f"    {sum(times):6.2f} s {len(times):6d}x  {statement}")
    print(f"  Target (Steward below 30 % of the total): {'met' if steward / total < 0.30 else 'NOT met'}")
    if succeeded != n:
        raise SystemExit(f"{n - succeeded} rotations did not succeed")
    return steward / total


def run(count: int, server, connection, paths: list[str]) -> int:
    from governance.services.rotation import BATCH_SIZE
    from governance.tasks.lifecycle import rotation_batch_run, rotation_job_run

    print(f"Database: {connection.vendor} ({connection.settings_dict['NAME']}); OpenBao {server.address} "
          "(dev server, in memory); one worker, tasks called in-process with Task.apply()")
    warm = _estate(2, server, "warm-up")
    rotation_job_run.apply(args=[warm[0]])  # connections and the connector cache, outside the measurement
    rotation_batch_run.apply(args=[warm[1:]])
    if "batch" in paths:
        jobs = _estate(count, server, "batch")
        _measure(f"The sweep's job path (rotation_batch_run, {BATCH_SIZE} jobs per message)", jobs,
                 lambda ids: [rotation_batch_run.apply(args=[ids[i:i + BATCH_SIZE]]).get()
                              for i in range(0, len(ids), BATCH_SIZE)], connection)
    if "single" in paths:
        jobs = _estate(count, server, "single")
        _measure("One job per message (rotation_job_run: manual rotations and retries)", jobs,
                 lambda ids: [rotation_job_run.apply(args=[i]).get() for i in ids], connection)
    return 0


if __name__ == "__main__":
    sys.exit(main())
