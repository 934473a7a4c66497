"""Enumerations of the domain (DOMAIN.md). Database check constraints are built from these."""

from django.db import models


class PersonStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DEPARTED = "departed", "Departed"


class SystemLifecycle(models.TextChoices):
    PLANNED = "planned", "Planned"
    ACTIVE = "active", "Active"
    RETIRING = "retiring", "Retiring"
    RETIRED = "retired", "Retired"


class Environment(models.TextChoices):
    PROD = "prod", "Production"
    STAGING = "staging", "Staging"
    DEV = "dev", "Development"


class Criticality(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class SecretStoreKind(models.TextChoices):
    OPENBAO_KV = "openbao_kv", "OpenBao/Vault KV v2"
    OPENBAO_PKI = "openbao_pki", "OpenBao PKI"
    AWS_SECRETS_MANAGER = "aws_secrets_manager", "AWS Secrets Manager"
    AZURE_KEY_VAULT = "azure_key_vault", "Azure Key Vault"
    GCP_SECRET_MANAGER = "gcp_secret_manager", "GCP Secret Manager"
    CYBERARK = "cyberark", "CyberArk"
    KUBERNETES_SECRET = "kubernetes_secret", "Kubernetes secret"
    SOURCE_CODE = "source_code", "Source code"
    CONFIG_FILE = "config_file", "Config file"
    CICD_VARIABLE = "cicd_variable", "CI/CD variable"
    CHAT_OR_TICKET = "chat_or_ticket", "Chat or ticket"
    SPREADSHEET = "spreadsheet", "Spreadsheet"
    UNKNOWN = "unknown", "Unknown"
    GITHUB_ACTIONS = "github_actions", "GitHub Actions secrets"
    GITLAB_CI = "gitlab_ci", "GitLab CI/CD variables"


MANAGED_STORE_KINDS = frozenset(
    {
        SecretStoreKind.OPENBAO_KV,
        SecretStoreKind.OPENBAO_PKI,
        SecretStoreKind.AWS_SECRETS_MANAGER,
        SecretStoreKind.AZURE_KEY_VAULT,
        SecretStoreKind.GCP_SECRET_MANAGER,
        SecretStoreKind.CYBERARK,
        SecretStoreKind.KUBERNETES_SECRET,
        # CI stores Steward reaches through a connector (a plain "CI/CD variable" stays unmanaged).
        SecretStoreKind.GITHUB_ACTIONS,
        SecretStoreKind.GITLAB_CI,
    }
)

# The CI stores a credential's new value is delivered to (CredentialDelivery) and pushed on rotation.
CI_STORE_KINDS = frozenset({SecretStoreKind.GITHUB_ACTIONS, SecretStoreKind.GITLAB_CI})


class CredentialKind(models.TextChoices):
    SERVICE_ACCOUNT = "service_account", "Service account"
    API_KEY = "api_key", "API key"
    CERTIFICATE = "certificate", "Certificate"
    OAUTH_CLIENT = "oauth_client", "OAuth client"
    SSH_KEY = "ssh_key", "SSH key"
    ACCESS_TOKEN = "access_token", "Access token"
    PASSWORD = "password", "Password"


class PrivilegeLevel(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


class CredentialStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"
    PROVISIONING = "provisioning", "Provisioning"
    PROVISIONING_FAILED = "provisioning_failed", "Provisioning failed"


class WorkflowKind(models.TextChoices):
    CICD_PIPELINE = "cicd_pipeline", "CI/CD pipeline"
    SCHEDULED_JOB = "scheduled_job", "Scheduled job"
    RUNBOOK = "runbook", "Orchestration runbook"
    IAC_APPLY = "iac_apply", "Infrastructure-as-code apply"
    RPA_BOT = "rpa_bot", "RPA bot"
    AI_AGENT = "ai_agent", "AI agent"
    INTEGRATION = "integration", "Integration"


class WorkflowStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    RETIRED = "retired", "Retired"


class DrillResult(models.TextChoices):
    NONE = "", "Never drilled"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


def check_in(field: str, choices) -> models.Q:
    """A Q for a CheckConstraint that keeps a status column inside its enumeration."""
    return models.Q(**{f"{field}__in": [c for c in choices.values]})


class ListKey(models.TextChoices):
    """The lists a person can choose columns of and save views of (governance.lists)."""

    CREDENTIAL = "credential", "Credentials"
    WORKFLOW = "workflow", "Workflows"
    SYSTEM = "system", "Systems"
    FINDING = "finding", "Findings"
