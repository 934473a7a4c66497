"""Production mode refuses unsafe settings, and `check --deploy` is clean with the required ones."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.embedded
SECRET_KEY = "k3Y-for-tests-only_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
# Production needs the audit chain key and the checkpoint signing key (an Ed25519 seed, base64) too.
AUDIT_KEYS = {"STEWARD_AUDIT_CHAIN_KEY": "chain-key-for-tests-only_0123456789abcdefXYZ",
              "STEWARD_AUDIT_SIGNING_KEY": "dGVzdHMtb25seSBlZDI1NTE5IHNlZWQgMzIgYnl0ZXM=",
              # and the key of discovery's secret fingerprints
              "STEWARD_DISCOVERY_FINGERPRINT_KEY": "fingerprint-key-for-tests-only_0123456789abc"}


def manage(*args, env):
    unset = ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_production_refuses_default_secret_key_debug_and_missing_hosts():
    result = manage("check", env={"STEWARD_ENV": "production", "DEBUG": "1"})
    assert result.returncode != 0
    for text in ("SECRET_KEY", "DEBUG must be off", "ALLOWED_HOSTS"):
        assert text in result.stderr


def test_check_deploy_is_clean_in_production():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={
        "STEWARD_ENV": "production", "SECRET_KEY": SECRET_KEY, "ALLOWED_HOSTS": "steward.example.com", **AUDIT_KEYS})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_demo_seed_is_refused_in_production():
    result = manage("seed_demo", env={
        "STEWARD_ENV": "production", "SECRET_KEY": SECRET_KEY, "ALLOWED_HOSTS": "steward.example.com", **AUDIT_KEYS,
        "DATABASE_URL": "sqlite:////nonexistent/never-created.sqlite3"})
    assert result.returncode != 0
    assert "production" in (result.stdout + result.stderr).lower()
