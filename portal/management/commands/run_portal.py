"""Run the whole portal on a laptop: web server, outbox relay, one Celery worker and beat; Ctrl-C stops all of it."""

import os
import shutil
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server, the outbox relay, one Celery worker and Celery beat together (the embedded default)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("STEWARD_ADDR", "127.0.0.1:8000"))

    def handle(self, *args, addr, **options):
        python = sys.executable
        var = str(settings.VAR_DIR)
        commands = {
            "web": [python, "manage.py", "runserver", addr, "--noreload"],
            # Publishes the outbox (the work the web server and the tasks committed) to the broker.
            "relay": [python, "manage.py", "outbox_relay"],
            "worker": [python, "-m", "celery", "-A", "portal", "worker", "--loglevel=INFO", "--concurrency=1",
                       "--pool=solo", "--without-gossip", "--without-mingle"],
            "beat": [python, "-m", "celery", "-A", "portal", "beat", "--loglevel=INFO",
                     f"--schedule={os.path.join(var, 'celerybeat-schedule')}",
                     f"--pidfile={os.path.join(var, 'celerybeat.pid')}"],
        }
        # The web server, worker and demo seeding share the dev server's root token (demo only).
        os.environ.setdefault("STEWARD_OPENBAO_TOKEN", "steward-dev-root")
        bao = shutil.which("bao", path=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}")
        if bao and os.environ.get("STEWARD_DEMO_OPENBAO", "1") == "1":
            commands["openbao"] = [bao, "server", "-dev", "-dev-listen-address=127.0.0.1:8200",
                                   f"-dev-root-token-id={os.environ['STEWARD_OPENBAO_TOKEN']}"]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        processes = {}
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)
        if "openbao" in processes:
            try:
                self._seed_openbao()
            except Exception as exc:  # noqa: BLE001 - the portal runs without demo secrets
                self.stderr.write(f"OpenBao demo secrets not written: {type(exc).__name__}: {exc}")
        host = addr if ":" in addr else f"127.0.0.1:{addr}"
        self.stdout.write(self.style.SUCCESS(f"\nSteward is running at http://{host}/"))
        password = settings.STEWARD_DEMO_PASSWORD
        shown = password if password == "steward-demo" else "the value of STEWARD_DEMO_PASSWORD"
        self.stdout.write(
            f"Demo sign-in names: demo-owner, demo-approver, demo-auditor, demo-secadmin (password: {shown})"
        )
        self.stdout.write("Press Ctrl-C to stop the web server, the outbox relay, the worker and beat.\n")
        exit_code = 0
        try:
            while not stopping:
                for name, process in list(processes.items()):
                    if process.poll() is not None and name == "openbao":
                        self.stderr.write("The OpenBao dev server stopped (is port 8200 taken?); the portal goes on.")
                        del processes[name]
                        continue
                    if process.poll() is not None:
                        self.stderr.write(f"{name} stopped with exit code {process.returncode}; stopping the rest.")
                        exit_code = 1
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            deadline = time.time() + 10
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)

    def _seed_openbao(self) -> None:
        """Once the dev server answers, put the demo credentials' secrets in it (idempotent)."""
        from django.utils import timezone

        from governance.demo_lifecycle import openbao_answers, seed_demo_lifecycle

        for _ in range(40):
            if openbao_answers("http://127.0.0.1:8200"):
                break
            time.sleep(0.25)
        result = seed_demo_lifecycle(now=timezone.now())
        if result.get("skipped"):
            self.stdout.write(f"OpenBao demo secrets: skipped ({result['reason']})")
        else:
            self.stdout.write(f"OpenBao dev server at {result['address']}: {result['secrets_written']} demo secrets "
                              f"and {result['certificates_issued']} certificates written.")
