"""Benchmark: an OWASP NHI Top 10 evidence pack for estates of 10,000 to 1,000,000 credentials.

Usage: .venv/bin/python bench/report.py [--credentials 10000,100000] [--sweep] [--profile N] [--keep]
       [--database-url postgres://postgres@127.0.0.1:5432/steward_bench_report]
       .venv/bin/python bench/report.py --credentials 1000000 --estate-url URL   (render again, on a kept estate)

For each size it creates a throw-away database (tables from the models, as the tests do), builds
an estate with bulk inserts (credentials of every kind with a share failing each check, 1 workflow
per 10 credentials, some credentials reused), loads the catalogue, optionally runs a sweep (so that
findings exist), then renders the pack in a fresh process (spawned, so its peak memory is the
report's own) exactly as the Celery task does, and prints wall time, peak RSS, pages, file size and
the attachments' sizes, then the time and memory slope between sizes (flat means the memory does not
follow the estate). Targets: 100,000 credentials in at most 60 s and 1 GB peak memory; 1,000,000 in at
most 90 s and 600 MB; the page count independent of the estate's size. --sizes is an alias of
--credentials. --profile N prints the render's N most expensive functions (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import multiprocessing as mp
import os
import pstats
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FRAMEWORK = "owasp_nhi_top10_2025"


def _setup_django(database_url: str | None = None) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


def _create_database(base_url: str) -> str:
    """A fresh database with every model's table (no migrations needed); returns its URL."""
    _setup_django(base_url)
    from django.conf import settings
    from django.db import connection

    settings.DATABASES["default"].setdefault("TEST", {})["MIGRATE"] = False
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return base_url.rsplit("/", 1)[0] + "/" + name if "postgres" in base_url else f"sqlite:///{name}"


def _estate(size: int, seed: int = 20261129) -> None:
    """Bulk-insert an estate of `size` credentials with a realistic share of problems."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from governance import roles
    from governance.choices import CredentialKind, SecretStoreKind
    from governance.models import Binding, Credential, Person, SecretStore, System, Team, Workflow

    rng = random.Random(seed)
    now = timezone.now()
    for name in roles.ROLE_GROUPS:  # a bulk-inserted bench estate, unaudited like the rest of it
        Group.objects.get_or_create(name=name)
    teams = []
    for n in range(20):
        group = Group.objects.create(name=f"bench-team-{n}")
        teams.append(Team.objects.create(group=group, name=f"Team {n}", slug=f"team-{n}"))
    people = Person.objects.bulk_create(
        [Person(username=f"person{n}", status="departed" if n % 50 == 0 else "active",
                departed_at=now if n % 50 == 0 else None, is_active=n % 50 != 0) for n in range(300)])
    systems = System.objects.bulk_create(
        [System(name=f"system-{n}", owner=people[n % 300], team=teams[n % 20], third_party=n % 25 == 0,
                lifecycle="retired" if n % 97 == 0 else "active", retired_at=now if n % 97 == 0 else None)
         for n in range(max(size // 500, 10))])
    managed = [SecretStore.objects.create(name=f"vault-{n}", kind=SecretStoreKind.OPENBAO_KV) for n in range(5)]
    unmanaged = [SecretStore.objects.create(name=f"ci-{n}", kind=SecretStoreKind.CICD_VARIABLE) for n in range(2)]
    kinds = list(CredentialKind.values)
    batch = []
    for n in range(size):
        kind = kinds[n % len(kinds)]
        store = rng.choice(unmanaged) if rng.random() < 0.12 else rng.choice(managed)
        rotated = now - dt.timedelta(days=rng.choice([5, 30, 60, 200, 400]) if rng.random() < 0.3 else 10)
        batch.append(Credential(
            name=f"cred-{n}", kind=kind, system=systems[n % len(systems)], identifier=f"id-{n}", store=store,
            store_path=f"secret/data/{n}", owner=None if n % 211 == 0 else people[n % 300], team=teams[n % 20],
            privilege_level="admin" if rng.random() < 0.08 else "read", scopes=["*"] if n % 301 == 0 else ["read"],
            issued_at=rotated, last_rotated_at=rotated, human_use_detected=n % 499 == 0,
            expires_at=now + dt.timedelta(days=rng.choice([10, 90, 300])) if kind == "certificate" else None,
        ))
        if len(batch) == 5000:
            Credential.objects.bulk_create(batch)
            batch = []
    Credential.objects.bulk_create(batch)
    workflows = Workflow.objects.bulk_create(
        [Workflow(name=f"workflow-{n}", kind="cicd_pipeline", platform="GitHub Actions", owner=people[n % 300],
                  team=teams[n % 20], shutdown_procedure="Stop it" if n % 3 else "",
                  kill_switch_steps="Revoke keys" if n % 3 else "")
         for n in range(max(size // 10, 1))])
    ids = list(Credential.objects.order_by("pk").values_list("pk", flat=True))
    bindings = [Binding(workflow=workflows[i // 10], credential_id=pk, purpose="deploy") for i, pk in enumerate(ids)]
    bindings += [Binding(workflow=workflows[(i // 10 + 1) % len(workflows)], credential_id=pk, purpose="reuse")
                 for i, pk in enumerate(ids) if i % 97 == 0 and len(workflows) > 1]
    Binding.objects.bulk_create(bindings, batch_size=5000)


def _prepare(database_url: str, size: int, sweep: bool) -> dict:
    _setup_django(database_url)
    from governance.audit import Actor, audit_append
    from governance.services.catalogue import catalogue_load

    t = time.time()
    _estate(size)
    from django.db import transaction

    actor = Actor.system(task_id="bench", label="bench")
    for n in range(500):  # some history for the events attachment and the chain verification
        with transaction.atomic():
            audit_append(actor=actor, action="bench.event", object_type="governance.credential", object_id=n + 1,
                         summary=f"bench event {n}")
    catalogue_load(actor=actor)
    from django.db import connection

    if connection.vendor == "postgresql":  # as autovacuum would: plans for 100,000 rows need statistics
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    timings = {"estate_s": round(time.time() - t, 1)}
    if sweep:
        from governance.services.sweep import sweep_run

        t = time.time()
        sweep_run(trigger="bench")
        timings["sweep_s"] = round(time.time() - t, 1)
    return timings


def _render(database_url: str, profile_top: int = 0) -> dict:
    """In a spawned process: create and run the job like the portal and the worker would."""
    _setup_django(database_url)
    from django.conf import settings

    settings.MEDIA_ROOT = Path(settings.VAR_DIR) / "bench-media"
    from governance.audit import Actor
    from reports.services import report_job_create, report_job_run

    profiler = cProfile.Profile() if profile_top else None
    start = time.time()
    if profiler:
        profiler.enable()
    job = report_job_create(actor=Actor.system(task_id="bench"), kind="framework_pack",
                            parameters={"framework": FRAMEWORK}, enqueue=False)
    job = report_job_run(job_id=job.pk)
    if profiler:
        profiler.disable()
    elapsed = time.time() - start
    # The process's own CPU time (all threads; not the database's): steadier than wall time on a busy machine.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    profile = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile_top)
        profile = out.getvalue()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import pypdf  # the bench's own reader, only here

    # The sizes the PDF records for its embedded files (/Params /Size), read without inflating them: at 1M
    # credentials they hold more than pypdf's zip-bomb limits let it decode.
    with pypdf.apply_configuration(maximum_declared_stream_length=2**40):
        reader = pypdf.PdfReader(job.file.path)
        names = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
        attachments = {str(names[i]): int(names[i + 1].get_object()["/EF"]["/F"].get_object()["/Params"]["/Size"])
                       for i in range(0, len(names), 2)}
    job.file.delete(save=False)
    return {"status": job.status, "error": job.error, "seconds": round(elapsed, 1), "cpu_s": round(cpu, 1),
            "peak_rss_mb": round(peak_mb), "pages": job.page_count, "pdf_mb": round(job.size / 2**20, 1),
            "attachments_mb": {k: round(v / 2**20, 2) for k, v in attachments.items()}, "profile": profile}


def _call(queue, fn, args) -> None:
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as exc:  # report it to the parent, which stops the benchmark
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
        raise


def _in_fresh_process(fn, *args):
    """Run fn in a spawned process (clean memory); its result, or SystemExit if it failed or died."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_call, args=(queue, fn, args))
    process.start()
    while process.is_alive() and queue.empty():
        time.sleep(0.5)
    if queue.empty():
        process.join()
        raise SystemExit(f"{fn.__name__} died with exit code {process.exitcode}")
    status, value = queue.get()
    process.join()
    if status != "ok":
        raise SystemExit(f"{fn.__name__} failed: {value}")
    return value


def _destroy(base_url: str, url: str) -> None:
    import psycopg

    if "postgres" not in url:
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return
    with psycopg.connect(base_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


TARGETS = {100_000: (60, 1024), 1_000_000: (90, 600)}  # credentials: (seconds, peak MB)


def _slopes(results: dict[int, dict]) -> None:
    """Seconds and peak MB per 100,000 more credentials, between consecutive sizes: memory flat in the
    estate shows as a slope near 0."""
    sizes = sorted(results)
    for small, big in zip(sizes, sizes[1:], strict=False):
        per = (big - small) / 100_000
        seconds = (results[big]["seconds"] - results[small]["seconds"]) / per
        cpu = (results[big]["cpu_s"] - results[small]["cpu_s"]) / per
        memory = (results[big]["peak_rss_mb"] - results[small]["peak_rss_mb"]) / per
        print(f"slope {small:,} -> {big:,} credentials: {seconds:+.1f} s ({cpu:+.1f} s CPU) and {memory:+.0f} MB "
              f"peak per 100,000 credentials")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credentials", "--sizes", dest="credentials", default="10000,100000",
                        help="Estate sizes to run, comma-separated (--sizes is an alias).")
    parser.add_argument("--sweep", action="store_true", help="Run a sweep first, so that findings exist.")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="Print the render's N most expensive functions (cProfile, cumulative time).")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/steward_bench_report")
    parser.add_argument("--keep", action="store_true",
                        help="Keep each estate's database and print its URL (for --estate-url).")
    parser.add_argument("--estate-url", default="",
                        help="Render again on an estate kept by --keep (no build, no sweep); --credentials "
                             "names its size.")
    args = parser.parse_args()
    results = {}
    for size in [int(s.replace("_", "")) for s in args.credentials.split(",")]:
        url = args.estate_url or _in_fresh_process(_create_database, args.database_url)
        try:
            timings = {} if args.estate_url else _in_fresh_process(_prepare, url, size, args.sweep)
            results[size] = {**timings, **_in_fresh_process(_render, url, args.profile)}
            profile = results[size].pop("profile")
            print(f"{size:>9,} credentials: {results[size]}", flush=True)
            if profile:
                print(profile, flush=True)
        finally:
            if args.keep or args.estate_url:
                print(f"estate kept: --estate-url {url}", flush=True)
            else:
                _destroy(args.database_url, url)
    sizes = sorted(results)
    if len(sizes) > 1:
        pages = [results[s]["pages"] for s in sizes]
        # Each control page lists at most FAILING_ON_PAGE failing objects: once every control has that many,
        # the page count stops changing; below it, a smaller estate can have a page or two fewer.
        print(f"pages per size {dict(zip(sizes, pages, strict=True))}: "
              f"{'identical' if len(set(pages)) == 1 else f'within {max(pages) - min(pages)} page(s)'}")
        _slopes(results)
    for size, (seconds, peak_mb) in TARGETS.items():
        result = results.get(size)
        if result:
            ok = result["seconds"] <= seconds and result["peak_rss_mb"] <= peak_mb
            print(f"target ({size:,} credentials: <= {seconds} s, <= {peak_mb} MB): {'met' if ok else 'MISSED'} "
                  f"({result['seconds']} s, {result['peak_rss_mb']} MB)")


if __name__ == "__main__":
    main()
