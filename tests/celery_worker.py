"""A real `celery -A portal worker` in a subprocess, against the test database and the test's Redis broker.

The worker runs the pool "solo" (the task runs in the worker process itself), so SIGKILL to it is a
worker lost mid-task, as when a machine dies. Its log is kept in a file and shown when a test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_for(check, *, timeout: float, what: str, log: Path | None = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    tail = log.read_text()[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{what} did not happen within {timeout} s\n{tail}")


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class CeleryWorker:
    """One worker process; start() waits until it is ready to take messages."""

    def __init__(self, log: Path, **env):
        self.log = log
        self.env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                    "CELERY_TASK_ALWAYS_EAGER": "", **env}
        self.name = f"leases-test-{uuid.uuid4().hex[:8]}@%h"
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", self.name],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: " ready." in self.log.read_text() or self.process.poll() is not None, timeout=90,
                 what="the Celery worker's start", log=self.log)
        if self.process.poll() is not None:
            raise AssertionError(f"the Celery worker exited at start:\n{self.log.read_text()[-4000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, no last write."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def broker_flush() -> None:
    """Forget every message on the test's broker database (its own Redis database, never a shared one)."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://"):
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
