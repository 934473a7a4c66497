import pytest
from django.core.exceptions import ValidationError

from governance.secret_guard import reject_secret_values, secret_kind

pytestmark = pytest.mark.embedded

SECRETS = [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "glpat-abcdefghijklmnopqrst12",
    "xoxb-123456789012-abcdefghijkl",
    "sk_live_abcdefghijklmnop1234",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "postgres://app:Sup3rS3cret@db.internal:5432/app",
    "password=hunter2hunter2",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "Zx8Qm2Lr7Tn4Vb1Kc9Wd3Hf6Jg5Ps0Ye",
]
REFERENCES = [
    "secret/data/payments/deploy-key",
    "AKIAIOSFODNN7EXAMPLE",
    "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
    "3f:9a:12:bc:de:01:23:45:67:89:ab:cd:ef:01:23:45",
    "svc-payments-deploy",
    "config/app.yaml#db_password",
    "Rotate quarterly. password: see the runbook",
    "550e8400-e29b-41d4-a716-446655440000",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/payments/db-AbCdEf",
]


@pytest.mark.parametrize("value", SECRETS)
def test_secret_values_are_recognised(value):
    assert secret_kind(value) is not None


@pytest.mark.parametrize("value", REFERENCES)
def test_references_pass(value):
    assert secret_kind(value) is None


def test_rejection_names_the_field_and_never_echoes_the_value():
    with pytest.raises(ValidationError) as info:
        reject_secret_values({"identifier": SECRETS[1], "name": "ok"})
    assert list(info.value.message_dict) == ["identifier"]
    assert SECRETS[1] not in str(info.value)
