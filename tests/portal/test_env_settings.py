"""Settings from the environment (issue 15): each is read, typed and validated at start-up, and every
STEWARD_* variable the code reads is listed in README.md."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.embedded

SHOW = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in %r}, default=str))
"""


def settings_under(env: dict[str, str], names: list[str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_") or k in ("STEWARD_ENV",)}
    return subprocess.run([sys.executable, "-c", SHOW % (names,)], cwd=ROOT, capture_output=True, text=True,
                          env={**base, "DJANGO_SETTINGS_MODULE": "portal.settings", **env}, timeout=120)


def test_the_settings_named_in_the_issue_come_from_the_environment():
    env = {"STEWARD_WEBHOOK_ALLOWED_HOSTS": "hooks.internal, 10.1.0.0/16", "STEWARD_OPENBAO_ADDR": "http://bao:8200",
           "STEWARD_WEBHOOK_TRUST_ENV": "yes", "STEWARD_IDEMPOTENCY_TTL_HOURS": "6",
           "STEWARD_INTEGRATION_MAX_LIFETIME_DAYS": "90", "STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS": "30",
           "STEWARD_WEBHOOK_SECRET_OVERLAP_HOURS": "2", "STEWARD_TRUSTED_PROXIES": "10.0.0.0/8",
           "STEWARD_ATTESTATION_CONSEQUENCE": "suspension"}
    names = ["STEWARD_WEBHOOK_ALLOWED_HOSTS", "STEWARD_OPENBAO_ADDR", "STEWARD_WEBHOOK_TRUST_ENV",
             "STEWARD_IDEMPOTENCY_TTL_HOURS", "STEWARD_INTEGRATION_MAX_LIFETIME_DAYS",
             "STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS", "STEWARD_WEBHOOK_SECRET_OVERLAP_HOURS",
             "STEWARD_TRUSTED_PROXIES", "STEWARD_ATTESTATION_SCHEDULE", "STEWARD_AUDIT_OPENBAO_ADDR"]
    shown = settings_under(env, names)
    assert shown.returncode == 0, shown.stderr
    values = json.loads(shown.stdout.strip().splitlines()[-1])
    assert values["STEWARD_WEBHOOK_ALLOWED_HOSTS"] == ["hooks.internal", "10.1.0.0/16"]
    assert values["STEWARD_OPENBAO_ADDR"] == values["STEWARD_AUDIT_OPENBAO_ADDR"] == "http://bao:8200"
    assert values["STEWARD_WEBHOOK_TRUST_ENV"] is True and values["STEWARD_IDEMPOTENCY_TTL_HOURS"] == 6
    assert values["STEWARD_INTEGRATION_MAX_LIFETIME_DAYS"] == 90
    assert values["STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS"] == 30
    assert values["STEWARD_WEBHOOK_SECRET_OVERLAP_HOURS"] == 2 and values["STEWARD_TRUSTED_PROXIES"] == ["10.0.0.0/8"]
    assert values["STEWARD_ATTESTATION_SCHEDULE"]["consequence"] == "suspension"


@pytest.mark.parametrize(("name", "value", "says"), [
    ("STEWARD_LEASE_SECONDS", "five", "whole number"),
    ("STEWARD_WEBHOOK_TIMEOUT_SECONDS", "0", "at least 1"),
    ("STEWARD_OUTBOX_POLL_SECONDS", "nan", "finite"),
    ("STEWARD_WEBHOOK_TRUST_ENV", "maybe", "true/false"),
    ("STEWARD_LOGIN_FAILURE_LIMIT", "0", "at least 1"),
    ("STEWARD_ATTESTATION_CONSEQUENCE", "shrug", "finding or suspension"),
    ("STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS", "400", "must not exceed"),
])
def test_a_wrong_value_stops_start_up_naming_the_variable(name, value, says):
    shown = settings_under({name: value}, ["STEWARD_ENV"])
    assert shown.returncode != 0
    assert name in shown.stderr and says in shown.stderr


def code_variables() -> set[str]:
    names = set()
    pattern = re.compile(r'(?:env_(?:str|int|float|bool|list)\(|os\.environ\.get\(|os\.environ\.setdefault\(|'
                         r'os\.environ\[)\s*"(STEWARD_[A-Z0-9_]+)"')
    for folder in ("portal", "governance", "reports"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    return names


def test_every_steward_variable_is_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"`(STEWARD_[A-Z0-9_<>]+)`", readme))
    wildcards = [re.compile("^" + re.escape(n).replace(re.escape("<KIND>"), "[A-Z_]+") + "$")
                 for n in listed if "<" in n]
    missing = sorted(n for n in code_variables() if n not in listed and not any(w.match(n) for w in wildcards))
    assert not missing, f"README.md does not list: {missing}"
