"""Real servers for the lifecycle tests: an OpenBao dev server and a private PostgreSQL cluster.

Each is started once per test process (the fixtures in tests/governance/connectors/conftest.py
call these) on a free loopback port, and stopped at the end of the session. The machine's own
PostgreSQL trusts local connections, so a login there proves nothing about a password: the
private cluster uses scram-sha-256 for host connections, so an old password really fails.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import hvac

ROOT = Path(__file__).resolve().parent.parent
BAO = ROOT / ".venv" / "bin" / "bao"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - the server is still starting
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout} s")


@dataclass
class OpenBaoServer:
    address: str
    token: str
    process: subprocess.Popen

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.token)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_openbao(*, with_pki: bool = True) -> OpenBaoServer:
    binary = str(BAO) if BAO.exists() else shutil.which("bao")
    port = free_port()
    token = "test-root-" + secrets.token_hex(12)
    process = subprocess.Popen(
        [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-root-token-id={token}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    server = OpenBaoServer(f"http://127.0.0.1:{port}", token, process)
    client = server.client()
    try:
        wait_until(lambda: not client.sys.read_health_status(method="GET")["sealed"], timeout=20,
                   what="OpenBao")
        if with_pki:
            enable_pki(client)
    except Exception:
        server.stop()
        raise
    return server


def enable_pki(client: hvac.Client, *, mount: str = "pki", role: str = "services") -> None:
    client.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": "87600h"})
    client.secrets.pki.generate_root(type="internal", common_name="Steward Test CA", mount_point=mount,
                                     extra_params={"ttl": "87600h"})
    client.secrets.pki.create_or_update_role(role, mount_point=mount, extra_params={
        "allow_any_name": True, "max_ttl": "87600h", "key_type": "ec", "key_bits": 256,
    })


@dataclass
class PostgresCluster:
    host: str
    port: int
    admin_user: str
    admin_password: str
    directory: str

    def stop(self) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl, "-D", f"{self.directory}/data", "-m", "immediate",
                        "stop"], capture_output=True, timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed under /usr/lib/postgresql/*/bin")
    return found[-1]


def start_postgres() -> PostgresCluster:
    directory = tempfile.mkdtemp(prefix="steward-pg-")
    shutil.chown(directory, "postgres", "postgres")
    os.chmod(directory, 0o700)
    port = free_port()
    admin_password = secrets.token_urlsafe(18)
    run = lambda *args: subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,  # noqa: E731
                                       capture_output=True, timeout=60)
    run(_pg_bin("initdb"), "-D", f"{directory}/data", "--auth-local=trust", "--auth-host=scram-sha-256",
        "-U", "postgres", "--no-sync")
    with open(f"{directory}/data/postgresql.conf", "a") as conf:
        conf.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{directory}'\n"
                   "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 16MB\n")
    run(_pg_bin("pg_ctl"), "-D", f"{directory}/data", "-l", f"{directory}/log", "-w", "start")
    cluster = PostgresCluster("127.0.0.1", port, "steward_admin", admin_password, directory)
    try:
        run(_pg_bin("psql"), "-h", directory, "-p", str(port), "-U", "postgres", "-d", "postgres", "-v",
            "ON_ERROR_STOP=1", "-c",
            f"CREATE ROLE steward_admin LOGIN CREATEROLE PASSWORD '{admin_password}'; "
            "GRANT pg_signal_backend TO steward_admin;")
    except Exception:
        cluster.stop()
        raise
    return cluster


_SERVERS: dict[str, object] = {}


def shared(name: str, start):
    """One server per test process, whichever test module asks first."""
    if name not in _SERVERS:
        _SERVERS[name] = start()
    return _SERVERS[name]


def stop_all() -> None:
    while _SERVERS:
        _, server = _SERVERS.popitem()
        server.stop()
