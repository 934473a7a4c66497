"""PostgreSQL role rotations: Steward's batch job path against OpenBao's database secrets engine, same run.

Imported by `bench/rotation.py --connector postgres` once Django is set up (its models are imported
here at the top), and run by it: `bench/rotation.py --connector postgres [--rotations 300]
[--workers 2] [--rounds 3]` starts an OpenBao dev server, a private PostgreSQL cluster with
scram-sha-256 for host connections (tests/lifecycle_servers.start_postgres, as the connector tests
use: the machine's own PostgreSQL trusts local connections, so a refused old password would prove
nothing there) and Steward's database (tables from the models).

1. N login roles on the cluster, created by its admin (steward_admin, CREATEROLE), each registered as
   a Steward credential: kind password, on a System with a ConnectorTarget(kind postgres_role), its
   password in OpenBao KV at secret/pg/<role> as {"username", "password"} (version 1), overdue.
2. Steward, instrumented (the breakdown): the sweep (rotation_schedule_due) makes the N jobs; one
   worker runs them through rotation_batch_run (50 job ids per message; Task.apply() in-process,
   as the kv mode does). Each rotation: ALTER ROLE with a SCRAM verifier over the batch's admin
   connection while a thread reads the previous password and its version from KV, the KV write with
   check-and-set, commit; then its proofs: the KV read-back (the current version is the one written
   and holds the new password), a sign-in with the new password and a refused one with the previous
   password, in two threads while the next rotation's change is made. Timed: every HTTP request to
   OpenBao, the admin connects, the connector's statements (ALTER ROLE, commit), each sign-in, the
   wait for the proofs, the connector in all, and outside it Steward's own database statements,
   audit chain and the rest (ORM, task tracer).
3. OpenBao: database/config/bench (postgresql-database-plugin, the cluster's admin, SCRAM verifiers
   computed by the plugin) and a static role for each of the same roles (creating one rotates its
   password once: not timed).
4. --rounds R (3): R rounds, each Steward uninstrumented on a new job per credential (due tomorrow,
   the day after, ...) then database/rotate-role/<role> for every role, one request after another
   (one client, as one Steward worker); the medians are compared (the machine's load moves: rounds
   side by side are fairer than one long run of each). OpenBao proves nothing after its ALTER ROLE
   (a sample of roles signs in with its password afterwards, untimed); Steward's proofs are in its
   time.
5. --workers W > 1: two more rounds of Steward jobs, uninstrumented, by a pool of 1 and then of W
   forked processes (each its own database and admin connection; messages handed to whichever
   process is free, as Celery does): the speed-up.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import multiprocessing
import os
import pstats
import secrets
import statistics
import threading
import time

import psycopg
import requests
from django.db import connection as default_connection
from django.db import connections
from django.utils import timezone
from psycopg import sql

from governance.connectors import registry
from governance.connectors.openbao_kv import OpenBaoKV
from governance.connectors.postgres_role import PostgresRole
from governance.models import Credential, Person, SecretStore, System
from governance.models.lifecycle import (
    ConnectorTarget,
    RotationAttempt,
    RotationJob,
    RotationStatus,
    RotationTrigger,
)
from governance.services import lifecycle as lifecycle_services
from governance.services.rotation import rotation_schedule_due
from governance.tasks.lifecycle import rotation_batch_run

PG_USER_ENV = "STEWARD_BENCH_PG_ADMIN_USER"
PG_PASSWORD_ENV = "STEWARD_BENCH_PG_ADMIN_PASSWORD"
BATCH = 50
WARM_UP = 2
OPENBAO_DB = "bench"


class Clock:
    """Seconds and calls, added to from any thread."""

    def __init__(self):
        self.seconds, self.calls = 0.0, 0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds
            self.calls += 1

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(time.perf_counter() - started)

        return timed


def admin_connection(cluster) -> psycopg.Connection:
    return psycopg.connect(host=cluster.host, port=cluster.port, dbname="postgres", user=cluster.admin_user,
                           password=cluster.admin_password, autocommit=True, sslmode="disable")


def estate(count: int, server, cluster, token_env: str) -> list[int]:
    """count login roles, registered as overdue Steward credentials; returns the sweep's job ids."""
    roles = [f"bench_role_{i}" for i in range(count)]
    kv = server.client().secrets.kv.v2
    with admin_connection(cluster) as conn:
        for role in roles:
            password = secrets.token_urlsafe(18)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role),
                                                                             sql.Literal(password)))
            kv.create_or_update_secret(path=f"pg/{role}", secret={"username": role, "password": password},
                                       mount_point="secret")
    owner, _ = Person.objects.get_or_create(username="bench-owner", defaults={"email": "owner@bench.test"})
    system = System.objects.create(name="bench-payments-db", owner=owner)
    ConnectorTarget.objects.create(system=system, kind="postgres_role", settings={
        "host": cluster.host, "port": cluster.port, "dbname": "postgres", "sslmode": "disable",
        "admin_user_env_var": PG_USER_ENV, "admin_password_env_var": PG_PASSWORD_ENV})
    store = SecretStore.objects.create(name="bench-openbao", kind="openbao_kv", address=server.address,
                                       settings={"mount": "secret"}, credential_env_var=token_env)
    old = timezone.now() - dt.timedelta(days=400)
    Credential.objects.bulk_create([
        Credential(name=role, kind="password", system=system, identifier=role, store=store,
                   store_path=f"secret/data/pg/{role}", store_version="1", owner=owner, last_rotated_at=old)
        for role in roles])
    started = time.perf_counter()
    summary = rotation_schedule_due()
    print(f"The sweep scheduled {summary['scheduled']} jobs in {time.perf_counter() - started:.2f} s")
    return list(RotationJob.objects.filter(status=RotationStatus.PENDING).order_by("pk").values_list("pk", flat=True))


def run_batches(job_ids: list[int]) -> dict:
    totals: dict[str, int] = {}
    for start in range(0, len(job_ids), BATCH):
        for status, n in rotation_batch_run.apply(args=[job_ids[start:start + BATCH]]).get().items():
            totals[status] = totals.get(status, 0) + n
    return totals


def proven(job_ids: list[int]) -> int:
    """Succeeded jobs whose attempt proves all three: version read back, new password works, old refused."""
    count = 0
    for proof in RotationAttempt.objects.filter(job_id__in=job_ids, outcome="succeeded").values_list("proof",
                                                                                                      flat=True):
        text = " ".join(proof)
        count += all(words in text for words in ("is current", "signs in with the new password",
                                                 "previous password is refused"))
    return count


def measure_steward(job_ids: list[int], connection) -> dict:
    """One worker, in-process, every component timed (the instrumentation is removed afterwards)."""
    clocks = {name: Clock() for name in ("kv", "kv_read", "kv_proof", "connect", "lookup", "alter", "commit",
                                         "new_login", "old_login", "prove", "connector", "sql", "audit")}
    admins: dict[int, psycopg.Connection] = {}
    new_passwords: set[str] = set()  # in memory only, to tell the two sign-ins apart; never printed
    proving = threading.local()
    saved = {
        "request": requests.Session.request, "admin": PostgresRole.admin, "execute": psycopg.Connection.execute,
        "commit": psycopg.Connection.commit, "login": PostgresRole.login_works, "prove": PostgresRole.prove_begin,
        "rotate": PostgresRole.rotate_begin, "audit": lifecycle_services.audit_append,
        "audit_many": lifecycle_services.audit_append_many, "verify": OpenBaoKV.verify_written,
    }

    def request(self, method, *args, **kwargs):
        clock = clocks["kv_proof"] if getattr(proving, "on", False) else \
            clocks["kv_read"] if method.upper() == "GET" else clocks["kv"]
        return clock.wrap(saved["request"])(self, method, *args, **kwargs)

    def admin(self):
        conn = clocks["connect"].wrap(saved["admin"])(self)
        admins[id(conn)] = conn
        return conn

    def execute(self, query, *args, **kwargs):
        if id(self) not in admins:
            return saved["execute"](self, query, *args, **kwargs)
        clock = clocks["alter"] if isinstance(query, sql.Composable) else clocks["lookup"]
        return clock.wrap(saved["execute"])(self, query, *args, **kwargs)

    def commit(self):
        if id(self) not in admins:
            return saved["commit"](self)
        return clocks["commit"].wrap(saved["commit"])(self)

    def login_works(self, role, password, **kwargs):
        clock = clocks["new_login"] if password in new_passwords else clocks["old_login"]
        return clock.wrap(saved["login"])(self, role, password, **kwargs)

    def prove_begin(self, role, path, version, new_password, old_password, **kwargs):
        new_passwords.add(new_password)
        finish = saved["prove"](self, role, path, version, new_password, old_password, **kwargs)

        def timed_finish():
            try:
                return clocks["prove"].wrap(finish)()
            finally:
                new_passwords.discard(new_password)

        return timed_finish

    def verify_written(self, *args, **kwargs):  # the read-back, in a proof thread
        proving.on = True
        try:
            return saved["verify"](self, *args, **kwargs)
        finally:
            proving.on = False

    def begin_timed(self, ref):
        finish = clocks["connector"].wrap(saved["rotate"])(self, ref)
        return clocks["connector"].wrap(finish)

    def sql_wrapper(execute, statement, params, many, context):
        return clocks["sql"].wrap(execute)(statement, params, many, context)

    requests.Session.request = request
    PostgresRole.admin, PostgresRole.login_works, PostgresRole.prove_begin = admin, login_works, prove_begin
    PostgresRole.rotate_begin, OpenBaoKV.verify_written = begin_timed, verify_written
    psycopg.Connection.execute, psycopg.Connection.commit = execute, commit
    lifecycle_services.audit_append = clocks["audit"].wrap(saved["audit"])
    lifecycle_services.audit_append_many = clocks["audit"].wrap(saved["audit_many"])
    try:
        with connection.execute_wrapper(sql_wrapper):
            profiler = None
            if os.environ.get("BENCH_PROFILE"):  # as in the kv mode: a cProfile of this thread's part
                profiler = cProfile.Profile()
                profiler.enable()
            started = time.perf_counter()
            outcomes = run_batches(job_ids)
            total = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
                pstats.Stats(profiler).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(30)
    finally:
        requests.Session.request = saved["request"]
        PostgresRole.admin, PostgresRole.login_works = saved["admin"], saved["login"]
        PostgresRole.prove_begin, PostgresRole.rotate_begin = saved["prove"], saved["rotate"]
        OpenBaoKV.verify_written = saved["verify"]
        psycopg.Connection.execute, psycopg.Connection.commit = saved["execute"], saved["commit"]
        lifecycle_services.audit_append = saved["audit"]
        lifecycle_services.audit_append_many = saved["audit_many"]
    return {"total": total, "outcomes": outcomes, "clocks": clocks}


def report_steward(job_ids: list[int], measured: dict) -> float:
    n, total, c = len(job_ids), measured["total"], measured["clocks"]
    ms = lambda seconds: 1000 * seconds / n  # noqa: E731 - per rotation
    succeeded = measured["outcomes"].get("succeeded", 0)
    print(f"\nSteward: rotation_batch_run ({BATCH} jobs per message), one worker: {n} rotations, {succeeded} "
          f"succeeded, {proven(job_ids)} with all three proofs recorded")
    print(f"  {n / total:.1f} rotations/s ({1000 * total / n:.2f} ms each; {total:.2f} s in all)")
    print("  per rotation (ms):")
    print(f"    admin connect          {ms(c['connect'].seconds):6.2f}  ({c['connect'].calls} connection(s) for "
          f"{n} rotations, {1000 * c['connect'].seconds / max(c['connect'].calls, 1):.1f} ms each)")
    print(f"    role lookup            {ms(c['lookup'].seconds):6.2f}  ({c['lookup'].calls / n:.1f} statements)")
    print(f"    ALTER ROLE             {ms(c['alter'].seconds):6.2f}")
    print(f"      KV read, meanwhile       {ms(c['kv_read'].seconds):6.2f}  ({c['kv_read'].calls / n:.1f} request: "
          "the previous password and the version to check-and-set on, in a thread)")
    print(f"    KV check-and-set write {ms(c['kv'].seconds):6.2f}  ({c['kv'].calls / n:.1f} request; "
          f"{(c['kv'].calls + c['kv_read'].calls + c['kv_proof'].calls) / n:.1f} KV requests per rotation in all)")
    print(f"    commit                 {ms(c['commit'].seconds):6.2f}")
    print(f"    proofs                 {ms(c['prove'].seconds):6.2f}  waited for after the next rotation's change; "
          "they ran, in threads, for:")
    print(f"      new password signs in    {ms(c['new_login'].seconds):6.2f}")
    print(f"      old password refused     {ms(c['old_login'].seconds):6.2f}")
    print(f"      KV read-back             {ms(c['kv_proof'].seconds):6.2f}  ({c['kv_proof'].calls / n:.1f} "
          "request)")
    inside = c["connect"].seconds + c["lookup"].seconds + c["alter"].seconds + c["commit"].seconds \
        + c["kv"].seconds + c["prove"].seconds
    print(f"    connector's own Python {ms(c['connector'].seconds - inside):6.2f}  (SCRAM keys and verifier, "
          "threads, results)")
    outside = total - c["connector"].seconds
    print(f"    Steward outside the connector {ms(outside):6.2f}: its database {ms(c['sql'].seconds):.2f} "
          f"({c['sql'].calls / n:.1f} statements), of which the audit chain {ms(c['audit'].seconds):.2f}; "
          f"ORM, task tracer and the rest {ms(outside - c['sql'].seconds):.2f}")
    if succeeded != n:
        raise SystemExit(f"{n - succeeded} Steward rotations did not succeed: {measured['outcomes']}")
    return n / total


def more_jobs(job_ids: list[int], days: int) -> list[int]:
    """A new round of jobs for the same credentials (one job per credential and day)."""
    credential_ids = RotationJob.objects.filter(pk__in=job_ids).values_list("credential_id", flat=True)
    due = timezone.now().date() + dt.timedelta(days=days)
    created = RotationJob.objects.bulk_create([
        RotationJob(credential_id=pk, due_on=due, trigger=RotationTrigger.MANUAL, status=RotationStatus.PENDING)
        for pk in credential_ids])
    return sorted(job.pk for job in created)


def _worker_start() -> None:
    default_connection.ensure_connection()  # this process's own database connection, before the clock starts


def _worker_chunk(job_ids: list[int]) -> dict:
    return run_batches(job_ids)


def run_processes(job_ids: list[int], processes: int) -> float:
    """Rotations per second with this many forked worker processes (uninstrumented)."""
    connections.close_all()  # nothing open is inherited: each process opens its own
    registry.clear_cache()
    chunks = [job_ids[start:start + BATCH] for start in range(0, len(job_ids), BATCH)]
    with multiprocessing.get_context("fork").Pool(processes, initializer=_worker_start) as pool:
        pool.map(time.sleep, [0.2] * processes, chunksize=1)  # every process started and connected
        started = time.perf_counter()
        results = pool.map(_worker_chunk, chunks, chunksize=1)
        total = time.perf_counter() - started
    succeeded = sum(result.get("succeeded", 0) for result in results)
    if succeeded != len(job_ids):
        raise SystemExit(f"{len(job_ids) - succeeded} rotations did not succeed with {processes} process(es)")
    print(f"  {processes} process(es): {len(job_ids)} rotations in {total:.2f} s = {len(job_ids) / total:.1f}/s "
          f"({proven(job_ids)} with all three proofs)")
    return len(job_ids) / total


def openbao_setup(server, cluster, roles: list[str]):
    """database/config and a static role for each role (creating one rotates its password once)."""
    client = server.client()
    client.sys.enable_secrets_engine("database")
    config = {"plugin_name": "postgresql-database-plugin", "allowed_roles": "*",
              "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@{cluster.host}:{cluster.port}/"
                                "postgres?sslmode=disable",
              "username": cluster.admin_user, "password": cluster.admin_password,
              "password_authentication": "scram-sha-256"}
    client.adapter.post(f"/v1/database/config/{OPENBAO_DB}", json=config)
    stored = client.adapter.get(f"/v1/database/config/{OPENBAO_DB}")["data"]
    started = time.perf_counter()
    for role in roles:
        client.adapter.post(f"/v1/database/static-roles/{role}",
                            json={"db_name": OPENBAO_DB, "username": role, "rotation_period": "86400"})
    print(f"\nOpenBao database secrets engine: {len(roles)} static roles created (each rotated once) in "
          f"{time.perf_counter() - started:.2f} s, not timed; password_authentication "
          f"{stored.get('password_authentication', 'password (plain text, hashed by the server)')!s}")
    return client


def measure_openbao(client, cluster, roles: list[str]) -> float:
    """database/rotate-role for every role, one request after another; a sample then signs in (untimed)."""
    started = time.perf_counter()
    for role in roles:
        client.adapter.post(f"/v1/database/rotate-role/{role}")
    total = time.perf_counter() - started
    sample = roles[:: max(len(roles) // 5, 1)]
    for role in sample:  # OpenBao proves nothing itself: its password must be the role's now
        password = client.adapter.get(f"/v1/database/static-creds/{role}")["data"]["password"]
        with psycopg.connect(host=cluster.host, port=cluster.port, dbname="postgres", user=role,
                             password=password, sslmode="disable"):
            pass
    return len(roles) / total


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(count: int, workers: int, server, cluster, connection, rounds: int = 3) -> int:
    token_env = "STEWARD_BENCH_OPENBAO_TOKEN"
    os.environ[PG_USER_ENV], os.environ[PG_PASSWORD_ENV] = cluster.admin_user, cluster.admin_password
    print(f"Database: {connection.vendor} ({connection.settings_dict['NAME']}); OpenBao {server.address} (dev "
          f"server, in memory); PostgreSQL cluster 127.0.0.1:{cluster.port} (scram-sha-256, fsync off); "
          f"{os.cpu_count()} cores; load average before: {load()}")
    jobs = estate(count + WARM_UP, server, cluster, token_env)
    run_batches(jobs[:WARM_UP])  # the connector cache, the HTTP session, the task tracer: outside the clock
    jobs = jobs[WARM_UP:]
    report_steward(jobs, measure_steward(jobs, connection))
    roles = list(RotationJob.objects.filter(pk__in=jobs).order_by("pk").values_list("credential__identifier",
                                                                                      flat=True))
    client = openbao_setup(server, cluster, roles)
    print(f"\nRates, {rounds} rounds, each Steward (one worker, in-process, uninstrumented) then OpenBao on the "
          f"same {count} roles (median of the rounds below):")
    steward_rates, openbao_rates = [], []
    for day in range(1, rounds + 1):
        round_jobs = more_jobs(jobs, day)
        started = time.perf_counter()
        outcomes = run_batches(round_jobs)
        steward_rates.append(len(round_jobs) / (time.perf_counter() - started))
        if outcomes.get("succeeded", 0) != len(round_jobs) or proven(round_jobs) != len(round_jobs):
            raise SystemExit(f"round {day}: not every Steward rotation succeeded with its proofs: {outcomes}")
        openbao_rates.append(measure_openbao(client, cluster, roles))
        print(f"  round {day}: Steward {steward_rates[-1]:.1f}/s ({1000 / steward_rates[-1]:.2f} ms each, all "
              f"{len(round_jobs)} with the three proofs), OpenBao {openbao_rates[-1]:.1f}/s "
              f"({1000 / openbao_rates[-1]:.2f} ms each); load average {load()}")
    steward, openbao = statistics.median(steward_rates), statistics.median(openbao_rates)
    print(f"\nSteward {steward:.1f}/s vs OpenBao {openbao:.1f}/s (medians): Steward's rate is {steward / openbao:.2f} "
          f"of OpenBao's; its time per rotation {openbao / steward:.2f}x OpenBao's (target: within 2x with one "
          f"worker: {'met' if openbao / steward <= 2 else 'NOT met'})")
    if workers > 1:
        print(f"\nWorkers (the same {count} roles again; forked processes, each its own connections):")
        one = run_processes(more_jobs(jobs, rounds + 1), 1)
        many = run_processes(more_jobs(jobs, rounds + 2), workers)
        connection.ensure_connection()
        print(f"Workers: 1 process {one:.1f}/s, {workers} processes {many:.1f}/s: speed-up {many / one:.2f}x; "
              f"{workers} processes vs OpenBao's median: {many / openbao:.2f}")
    print(f"Load average after: {load()}")
    return 0
