"""A private Redis broker and a real Celery worker for tests that take the broker away and bring it back.

The broker is a redis-server on a free loopback port (no persistence), started and killed by the
test; the worker is `celery -A portal worker` in a subprocess on that broker and on the test's own
database, so what it runs is exactly what production runs. Settings the worker needs beyond the
environment are in tests/live_worker_settings.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.lifecycle_servers import ROOT, free_port, wait_until


@dataclass
class RedisBroker:
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: apt-get install redis-server")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: self.client().ping(), timeout=15, what="redis-server")

    def kill(self) -> None:
        """The broker goes away at once (SIGKILL), as in an outage; its queue is lost with it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def waiting(self) -> int:
        """Messages in the default queue plus those a worker holds unacknowledged."""
        client = self.client()
        return client.llen("celery") + client.hlen("unacked")


@dataclass
class CeleryWorker:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def database_url(settings_dict: dict) -> str:
    """The URL of the database the test runs on (the per-process test database), for the worker."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    return (f"postgres://{settings_dict['USER']}{password}@{settings_dict['HOST'] or '127.0.0.1'}:"
            f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}")


def start_worker(*, broker: RedisBroker, database: str, workdir: Path) -> CeleryWorker:
    """A worker on the broker and database given; mail goes to files under workdir/mail."""
    (workdir / "mail").mkdir(parents=True, exist_ok=True)
    (workdir / "media").mkdir(parents=True, exist_ok=True)
    log = workdir / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.live_worker_settings", "STEWARD_ENV": "test",
           "DATABASE_URL": database, "CELERY_BROKER_URL": broker.url,
           "STEWARD_TEST_MAIL_DIR": str(workdir / "mail"), "STEWARD_TEST_MEDIA_ROOT": str(workdir / "media")}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "--concurrency=1",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    worker = CeleryWorker(process, log)
    try:
        wait_until(lambda: "ready." in worker.output() or process.poll() is not None, timeout=60,
                   what="the Celery worker")
    except RuntimeError:
        worker.stop()
        raise
    if process.poll() is not None:
        raise RuntimeError(f"the Celery worker exited: {worker.output()[-2000:]}")
    return worker


def wait_for(check, *, timeout: float, what: str, worker: CeleryWorker | None = None) -> None:
    """Poll check() until it is true; on a timeout say what was awaited and show the worker's last lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = worker.output()[-3000:] if worker is not None else ""
    raise AssertionError(f"{what}: not within {timeout} s\n{tail}")
