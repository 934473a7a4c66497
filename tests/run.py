"""`make test`: the whole suite against PostgreSQL and Redis when they answer, then the embedded smoke.

STEWARD_TEST_WORKERS sets how many processes run the whole suite (default: 2 on PostgreSQL, 0 = this
process only, on SQLite).

When 127.0.0.1:5432 (database `test`) and 127.0.0.1:6379 answer, the full suite runs against them
and says so; otherwise it runs against the embedded default (SQLite and the filesystem broker).
Tests marked `embedded` then run again on the embedded default, so both configurations are
exercised in every run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def run(label: str, env: dict[str, str], args: list[str]) -> int:
    print(f"\n=== {label} ===", flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env)


def ensure_chromium() -> None:
    """The browser journeys use Debian's Chromium; install it where missing (as root, from apt)."""
    if shutil.which("chromium"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("Chromium is missing and cannot be installed here: browser journeys will be skipped", flush=True)
        return
    print("Installing Chromium for the browser journeys (apt-get install chromium chromium-driver)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.call(["apt-get", "update", "-qq"], env=env)
    subprocess.call(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], env=env,
                    stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    ensure_chromium()
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    base.setdefault("STEWARD_ENV", "test")
    services = {}
    pg, redis = answers("127.0.0.1", 5432), answers("127.0.0.1", 6379)
    if pg:
        services["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    if redis:
        services["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/15"
        services["STEWARD_TEST_REDIS_URL"] = "redis://127.0.0.1:6379/14"
    print(
        "Testing against "
        + ("PostgreSQL 127.0.0.1:5432 (database test)" if pg else "SQLite (PostgreSQL not answering)")
        + " and "
        + ("Redis 127.0.0.1:6379" if redis else "the filesystem broker (Redis not answering)"),
        flush=True,
    )
    # On PostgreSQL, two workers (pytest-xdist), one per core here: each has its own test database (named
    # after its process), OpenBao, PostgreSQL cluster and browser. SQLite runs stay in one process.
    workers = os.environ.get("STEWARD_TEST_WORKERS", "2" if pg else "0")
    full = run("whole suite", {**base, **services}, ["-q", "-n", workers, *argv])
    with tempfile.TemporaryDirectory(prefix="steward-embedded-") as var_dir:
        embedded_env = {**base, "STEWARD_VAR_DIR": var_dir}
        smoke = run("embedded default (SQLite, filesystem broker): tests marked embedded", embedded_env,
                    ["-q", "-m", "embedded", *argv])
    if smoke == 5:  # no test selected: a filtered run (argv) may leave none marked embedded
        smoke = 0
    print(f"\nwhole suite exit {full}; embedded smoke exit {smoke}", flush=True)
    return full or smoke


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
