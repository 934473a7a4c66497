"""`make run` (manage.py run_portal), issue #19 problem 12: its own OpenBao on a free port with the demo stores
pointed at it, the sign-in page answering before any background process starts, a quiet console with logs under
var/log/, and the demo accounts on the sign-in page in demo mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from governance.demo_lifecycle import demo_openbao_stores_point_at
from governance.models import AuditEvent, SecretStore
from portal.management.commands.run_portal import DEMO_ACCOUNTS, free_port
from tests.factories import SecretStoreFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_the_demo_stores_point_at_this_runs_openbao_or_at_nothing(personas):
    kv = SecretStoreFactory(name="openbao-prod", kind="openbao_kv", address="http://127.0.0.1:8200")
    pki = SecretStoreFactory(name="openbao-pki", kind="openbao_pki", address="http://127.0.0.1:8200")
    other = SecretStoreFactory(name="aws-secrets-prod", kind="aws_secrets_manager", address="https://asm.example")
    assert demo_openbao_stores_point_at(address="http://127.0.0.1:41234") == 2
    assert {s.name: s.address for s in SecretStore.objects.all()} == {
        kv.name: "http://127.0.0.1:41234", pki.name: "http://127.0.0.1:41234", other.name: "https://asm.example"}
    assert AuditEvent.objects.filter(action="secretstore.update", object_id=str(kv.pk)).exists()
    assert demo_openbao_stores_point_at(address="") == 2  # no OpenBao in this run: nowhere, never 8200
    assert set(SecretStore.objects.filter(name__startswith="openbao").values_list("address", flat=True)) == {""}
    assert demo_openbao_stores_point_at(address="") == 0


@pytest.mark.django_db
def test_the_sign_in_page_lists_the_demo_accounts_in_demo_mode_only(client, settings):
    settings.STEWARD_DEMO_MODE = False
    assert "demo-owner" not in client.get("/accounts/login/").content.decode()
    settings.STEWARD_DEMO_MODE = True
    page = client.get("/accounts/login/").content.decode()
    assert all(name in page for name in DEMO_ACCOUNTS) and "steward-demo" in page
    settings.STEWARD_DEMO_PASSWORD = "chosen-by-someone"
    page = client.get("/accounts/login/").content.decode()
    assert "chosen-by-someone" not in page and "STEWARD_DEMO_PASSWORD" in page


def _env(var_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_BROKER_URL"))}
    env.update({"STEWARD_ENV": "development", "STEWARD_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "portal.settings"}, **extra)
    env.pop("STEWARD_OPENBAO_TOKEN", None)
    return env


def _manage(env, *args, timeout=300):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=True)


@pytest.fixture(scope="module")
def migrated_var(tmp_path_factory):
    """A fresh embedded install (SQLite, filesystem broker) with the two demo OpenBao stores registered."""
    var_dir = tmp_path_factory.mktemp("run-portal")
    env = _env(var_dir)
    _manage(env, "migrate", "--noinput", "--verbosity", "0")
    _manage(env, "shell", "-c", (
        "from governance.models import SecretStore\n"
        "SecretStore.objects.create(name='openbao-prod', kind='openbao_kv', address='http://127.0.0.1:8200', "
        "settings={'mount': 'secret'}, credential_env_var='STEWARD_OPENBAO_TOKEN')\n"
        "SecretStore.objects.create(name='openbao-pki', kind='openbao_pki', address='http://127.0.0.1:8200', "
        "settings={'mount': 'pki', 'role': 'internal-services'}, credential_env_var='STEWARD_OPENBAO_TOKEN')\n"))
    return var_dir


def _store_addresses(env) -> set[str]:
    out = _manage(env, "shell", "-c", "from governance.models import SecretStore\n"
                  "print(sorted(set(SecretStore.objects.values_list('address', flat=True))))").stdout
    return set(eval(out.strip().splitlines()[-1]))  # noqa: S307 - our own printed list


def _run_portal(env, addr):
    process = subprocess.Popen([sys.executable, "manage.py", "run_portal", "--addr", addr], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, started = [], time.time()
    while time.time() - started < 120:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Logs:"):
            break
    return process, lines, time.time() - started


def _stop(process) -> list[str]:
    os.killpg(process.pid, signal.SIGINT)
    rest = process.communicate(timeout=60)[0]
    return rest.splitlines()


@pytest.mark.parametrize("demo_openbao", ["1", "0"])
def test_make_run_starts_its_own_openbao_answers_first_and_keeps_the_console_quiet(migrated_var, demo_openbao):
    bao = Path(sys.executable).parent / "bao"
    if demo_openbao == "1" and not bao.exists():
        pytest.skip("no bao binary beside the interpreter")
    env = _env(migrated_var, STEWARD_DEMO_OPENBAO=demo_openbao)
    addr = f"127.0.0.1:{free_port()}"
    process, lines, took = _run_portal(env, addr)
    try:
        assert any(f"Steward is running at http://{addr}/" in line for line in lines), lines
        # Announced only once the sign-in page answered: it answers now, with the demo accounts on it.
        login = requests.get(f"http://{addr}/accounts/login/", timeout=5)
        assert login.status_code == 200 and "demo-secadmin" in login.text
        addresses = _store_addresses(env)
        assert "http://127.0.0.1:8200" not in addresses
        if demo_openbao == "1":
            (openbao,) = addresses
            assert openbao.startswith("http://127.0.0.1:")
            assert requests.get(f"{openbao}/v1/sys/health", timeout=5).status_code == 200
        else:
            assert addresses == {""}
            assert any("No OpenBao (STEWARD_DEMO_OPENBAO=0)" in line for line in lines)
        time.sleep(3)  # the worker and beat have started: their chatter goes to the logs, not the console
    finally:
        rest = _stop(process)
    console = [line for line in lines + rest if line.strip()]
    assert len(console) <= 8, console
    assert not [line for line in console if "WARNING" in line or "Traceback" in line or "GET /" in line], console
    assert process.returncode == 0 and console[-1] == "Stopped."
    logs = {p.name for p in (migrated_var / "log").iterdir()}
    assert {"web.log", "relay.log", "worker.log", "beat.log"} <= logs
    assert "GET /accounts/login/" in (migrated_var / "log" / "web.log").read_text()
