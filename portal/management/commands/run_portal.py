"""Run the whole portal on a laptop: web server, outbox relay, one Celery worker and beat; Ctrl-C stops all of it.

What `make run` promises (issue #19, problem 12):
- its own OpenBao dev server on a free port, with the demo's OpenBao stores pointed at it (never at a
  server someone else runs on 127.0.0.1:8200); without one the stores point nowhere and rotations fail
  saying so;
- the web server answers before any background work starts: the relay, worker and beat (the first
  sweep, the catalogue, the demo secrets) start once the sign-in page has answered;
- a quiet console: each process writes to var/log/<name>.log; the console shows the address, the demo
  accounts and what went wrong.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from governance import demo_aws_server, demo_cloud
from governance.demo_ci_server import CIStandIn
from governance.demo_discovery import seed_demo_discovery_openbao
from governance.demo_lifecycle import demo_openbao_stores_point_at, openbao_answers, seed_demo_lifecycle

DEMO_ACCOUNTS = ("demo-owner", "demo-approver", "demo-auditor", "demo-secadmin")
WEB_READY_SECONDS = 60


def free_port() -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback address
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


class Command(BaseCommand):
    help = "Start the web server, the outbox relay, one Celery worker and Celery beat together (the embedded default)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("STEWARD_ADDR", "127.0.0.1:8000"))

    def handle(self, *args, addr, **options):
        python = sys.executable
        var = str(settings.VAR_DIR)
        log_dir = os.path.join(var, "log")
        os.makedirs(log_dir, exist_ok=True)
        host = addr if ":" in addr else f"127.0.0.1:{addr}"
        # Every child knows it runs the demo: the sign-in page then lists the demo accounts.
        os.environ["STEWARD_DEMO_MODE"] = "1"
        # The web server, worker and demo seeding share the dev server's root token (demo only).
        os.environ.setdefault("STEWARD_OPENBAO_TOKEN", "steward-dev-root")
        bao = shutil.which("bao", path=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}")
        openbao_address = ""
        first = {"web": [python, "manage.py", "runserver", host, "--noreload"]}
        if bao and os.environ.get("STEWARD_DEMO_OPENBAO", "1") == "1":
            openbao_address = f"http://127.0.0.1:{free_port()}"
            first["openbao"] = [bao, "server", "-dev", f"-dev-listen-address={openbao_address.removeprefix('http://')}",
                                f"-dev-root-token-id={os.environ['STEWARD_OPENBAO_TOKEN']}"]
        later = {
            # Publishes the outbox (the work the web server and the tasks committed) to the broker.
            "relay": [python, "manage.py", "outbox_relay"],
            "worker": [python, "-m", "celery", "-A", "portal", "worker", "--loglevel=INFO", "--concurrency=1",
                       "--pool=solo", "--without-gossip", "--without-mingle"],
            "beat": [python, "-m", "celery", "-A", "portal", "beat", "--loglevel=INFO",
                     f"--schedule={os.path.join(var, 'celerybeat-schedule')}",
                     f"--pidfile={os.path.join(var, 'celerybeat.pid')}"],
        }
        # Before anything can rotate: the demo stores point at this run's OpenBao, or at nothing.
        demo_openbao_stores_point_at(address=openbao_address)
        # AWS (moto) and CI API stand-ins in this process, before the others start: they inherit the credentials.
        cloud = self._start_cloud() if settings.STEWARD_DEMO_CLOUD else None
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        processes, logs = {}, {}

        def start(name, command):
            logs[name] = open(os.path.join(log_dir, f"{name}.log"), "ab")  # noqa: SIM115 - closed at the end
            processes[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True,
                                               stdin=subprocess.DEVNULL, stdout=logs[name], stderr=subprocess.STDOUT)

        exit_code = 0
        try:
            for name, command in first.items():
                start(name, command)
            if self._web_answers(processes["web"], host, lambda: stopping):
                self._announce(host, openbao_address, bool(bao), log_dir)
                if "openbao" in processes:
                    self._seed_openbao(openbao_address)
                if cloud is not None:
                    self._seed_cloud(*cloud)
                for name, command in later.items():
                    start(name, command)
                exit_code = self._watch(processes, log_dir, lambda: stopping)
            elif not stopping:
                self.stderr.write(f"The web server did not start: see {os.path.join(log_dir, 'web.log')}.")
                exit_code = 1
        finally:
            self._stop(processes, logs)
            for stand_in in cloud or ():
                stand_in.stop()
        if exit_code:
            sys.exit(exit_code)

    @staticmethod
    def _web_answers(web, host: str, stopping) -> bool:
        """Wait until the sign-in page answers (nothing else starts before it does)."""
        deadline = time.time() + WEB_READY_SECONDS
        while not stopping() and web.poll() is None and time.time() < deadline:
            if answers(f"http://{host}/accounts/login/"):
                return True
            time.sleep(0.2)
        return False

    def _watch(self, processes, log_dir: str, stopping) -> int:
        """Until Ctrl-C or a process dies (1); OpenBao may stop without stopping the portal."""
        while not stopping():
            for name, process in list(processes.items()):
                if process.poll() is None:
                    continue
                if name == "openbao":
                    self.stderr.write(f"The OpenBao dev server stopped (see {log_dir}/openbao.log); the portal goes "
                                      "on, and rotations in the demo stores fail.")
                    del processes[name]
                    continue
                self.stderr.write(f"{name} stopped with exit code {process.returncode} (see {log_dir}/{name}.log); "
                                  "stopping the rest.")
                return 1
            time.sleep(0.5)
        return 0

    def _announce(self, host: str, openbao_address: str, have_bao: bool, log_dir: str) -> None:
        self.stdout.write(self.style.SUCCESS(f"\nSteward is running at http://{host}/"))
        password = settings.STEWARD_DEMO_PASSWORD
        shown = password if password == "steward-demo" else "the value of STEWARD_DEMO_PASSWORD"
        self.stdout.write(f"Demo sign-in names: {', '.join(DEMO_ACCOUNTS)} (password: {shown})")
        if openbao_address:
            self.stdout.write(f"OpenBao dev server (this run's own, in memory): {openbao_address}")
        else:
            why = "STEWARD_DEMO_OPENBAO=0" if have_bao else "no bao binary on the PATH"
            self.stdout.write(f"No OpenBao ({why}): the demo's OpenBao stores point nowhere; rotations there fail.")
        self.stdout.write(f"Logs: {log_dir}/. Press Ctrl-C to stop the web server, the relay, the worker and beat.\n")

    def _stop(self, processes, logs):
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for log in logs.values():
            log.close()
        self.stdout.write("Stopped.")

    def _seed_openbao(self, address: str) -> None:
        """Once this run's dev server answers, put the demo credentials' secrets in it (idempotent)."""

        for _ in range(40):
            if openbao_answers(address):
                break
            time.sleep(0.25)
        try:
            result = seed_demo_lifecycle(now=timezone.now())
        except Exception as exc:  # noqa: BLE001 - the portal runs without demo secrets
            self.stderr.write(f"OpenBao demo secrets not written: {type(exc).__name__}: {exc}")
            return
        if result.get("skipped"):
            written = f"secrets skipped ({result['reason']})"
        else:
            written = f"{result['secrets_written']} secrets and {result['certificates_issued']} certificates written"
        try:
            found = seed_demo_discovery_openbao()
        except Exception as exc:  # noqa: BLE001 - the portal runs without the OpenBao discovery source
            self.stdout.write(f"OpenBao demo: {written}.")
            self.stderr.write(f"OpenBao discovery source not run: {type(exc).__name__}: {exc}")
            return
        if found.get("skipped"):
            discovered = f"discovery skipped ({found['reason']})"
        else:
            discovered = (f"discovery found {found['items']} items ({found['undeclared']} undeclared, "
                          f"{found['missing']} declared but missing; run {found['status']})")
        self.stdout.write(f"OpenBao demo: {written}; {discovered}.")  # one console line for both

    def _start_cloud(self):
        """moto (AWS IAM, STS, Secrets Manager) and the CI API stand-in on free loopback ports; their credentials
        go into this process's environment, which the web server and the worker inherit."""
        aws = demo_aws_server.start()
        ci = CIStandIn(github_token=secrets.token_urlsafe(24), gitlab_token=secrets.token_urlsafe(24)).start()
        os.environ[demo_cloud.AWS_KEY_ENV], os.environ[demo_cloud.AWS_SECRET_ENV] = aws.admin_key_id, aws.admin_secret
        os.environ[demo_cloud.GITHUB_TOKEN_ENV], os.environ[demo_cloud.GITLAB_TOKEN_ENV] = ci.github_token, \
            ci.gitlab_token
        self.stdout.write(f"AWS stand-in (moto) at {aws.endpoint}; GitHub/GitLab stand-in at {ci.address}.")
        return aws, ci

    def _seed_cloud(self, aws, ci) -> None:
        """The demo's AWS and CI credentials against this run's stand-ins (after OpenBao, where the IAM key lives)."""

        try:
            result = demo_cloud.seed_demo_cloud(aws=aws, ci=ci, now=timezone.now())
        except Exception as exc:  # noqa: BLE001 - the portal runs without the demo's cloud credentials
            self.stderr.write(f"Demo AWS and CI credentials not seeded: {type(exc).__name__}: {exc}")
            return
        self.stdout.write(f"Demo AWS and CI credentials: {'; '.join(result['seeded']) or 'none'}"
                          + (f" (skipped: {'; '.join(result['skipped'])})" if result["skipped"] else ""))
