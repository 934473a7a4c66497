import pytest
from django.core.exceptions import ValidationError

from governance.audit import Actor
from governance.models import AuditEvent
from governance.secret_guard import reject_secret_values, secret_kind
from governance.services import inventory

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
# The gaps of issue 15: each was accepted, then kept for ever in the audit chain and evidence PDFs.
GAPS = {
    "pgp_private_key_block": "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGX...",
    "openssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
    "redis_url_password_only": "redis://:pw@host",
    "redis_url_password_port": "redis://:s3cr3tpw@cache.internal:6379/0",
    "amqp_url_user_password": "amqps://svc:Tr0ub4dor@mq.internal",
    "env_assignment_db_password": "DB_PASSWORD=Xy7pq2LmN9",
    "shell_export_quoted": "export DB_PASSWORD='Xy7pq2LmN9'",
    "yaml_api_key": "api_key: 9a8b7c6d5e4f",
    "json_client_secret": '{"client_secret": "abcDEF123456"}',
    "hex_encoded_256_bit_key": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "hex_key_in_prose": "the AES key is 00112233445566778899aabbccddeeff for now",
    "twilio_key_detect_secrets": "SK" + "0123456789abcdef0123456789abcdef",
    "sendgrid_key_detect_secrets": "SG." + "ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr",
}
# Ordinary text the closed gaps must still let through: env-var names, store paths, placeholders, digests.
STILL_REFERENCES = [
    "DB_PASSWORD", "db_password_file", "PAYMENTS_API_KEY", "The deploy job reads the token from VAULT_TOKEN.",
    "api_key: ${API_KEY}", "token: {{ vault_token }}", "password=<from the store>", "secret: kv/payments/db",
    "secret/data/payments/api-key", "token_url: https://login.example.com/oauth2/token",
    "https://vault.example.com:8200/v1/secret", "http://[::1]:8200", "credentials: managed by the platform team",
    "Password rotation: quarterly, by the platform team", "10.0.0.12", "pwd=/var/lib/app",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Fixed in commit 7c9ee8d9e3df4247df4b74fa65f274a9360c995f", "serial 4f1a2b3c4d5e6f708192a3b4c5d6e7f8",
    "00000000000000000000000000000000",
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


@pytest.mark.parametrize("value", GAPS.values(), ids=GAPS.keys())
def test_issue_15_gaps_are_closed(value):
    assert secret_kind(value) is not None


@pytest.mark.parametrize("value", STILL_REFERENCES)
def test_closing_the_gaps_keeps_ordinary_text(value):
    assert secret_kind(value) is None


def test_a_bare_hex_digest_is_allowed_only_in_a_digest_field():
    digest = GAPS["hex_encoded_256_bit_key"]
    assert secret_kind(digest, field="fingerprint") is None
    with pytest.raises(ValidationError) as info:
        reject_secret_values({"fingerprint": digest, "notes": digest})
    assert list(info.value.message_dict) == ["notes"]


def test_detect_secrets_findings_are_named_and_an_aws_key_id_is_not_one():
    assert "Twilio" in secret_kind(GAPS["twilio_key_detect_secrets"])
    assert secret_kind("AKIAIOSFODNN7EXAMPLE") is None


@pytest.mark.django_db
@pytest.mark.parametrize("value", [GAPS["pgp_private_key_block"], GAPS["redis_url_password_only"],
                                   GAPS["env_assignment_db_password"], GAPS["hex_encoded_256_bit_key"]],
                         ids=["pgp", "redis_url", "assignment", "hex"])
def test_a_gap_value_is_refused_by_the_service_before_the_audit_chain(estate, personas, value):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as info:
        inventory.credential_update(actor=Actor.for_user(personas.owner), credential=estate["credential"],
                                    data={"notes": f"Connection: {value}"})
    assert "notes" in info.value.message_dict and value not in str(info.value)
    assert AuditEvent.objects.count() == before
    estate["credential"].refresh_from_db()
    assert value not in estate["credential"].notes
