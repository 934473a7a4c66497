"""The demo estate as data: people, teams, systems, stores, workflows and the credentials they use.

Read by governance.demo, which turns these lists into objects through the services. Everything
here is fixed; only identifiers, serials and exact dates come from the seeded random generator.
Problems that governance must catch are marked on the entries (see governance.demo for counts).
"""

from __future__ import annotations

from typing import NamedTuple

from governance.choices import CredentialKind as K
from governance.choices import Criticality as C
from governance.choices import Environment, SecretStoreKind, WorkflowKind


class PersonSpec(NamedTuple):
    username: str
    first_name: str
    last_name: str
    job_title: str
    team: str | None = None
    departs: bool = False


class TeamSpec(NamedTuple):
    name: str
    slug: str  # short path segment used in store paths
    manager: str
    description: str


class SystemSpec(NamedTuple):
    name: str
    description: str
    environment: str
    criticality: str
    owner: str
    team: str
    third_party: bool = False
    vendor: str = ""
    retire_reason: str = ""


class StoreSpec(NamedTuple):
    name: str
    kind: str
    address: str
    description: str
    settings: dict | None = None
    credential_env_var: str = ""


class Cred(NamedTuple):
    """A credential a workflow uses. Its owner and team are the workflow's.

    problems: "overdue" (last rotated long ago), "overdue-policy" (older than its own 30-day
    policy), "expiring" / "expired" (certificates), "human-use", "unreviewed" (third party).
    Unmanaged store, retired system and reuse follow from the store, system and Use entries.
    """

    name: str
    kind: str
    system: str
    store: str
    purpose: str
    privilege: str = "read"
    scopes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    status: str = "active"
    path: str = ""


class Use(NamedTuple):
    """A workflow also uses a credential defined by an earlier workflow (reuse)."""

    name: str
    purpose: str


class Flow(NamedTuple):
    name: str
    kind: str
    platform: str
    team: str | None
    owner: str
    systems: tuple[str, ...]
    criticality: str
    description: str
    powers: str = ""  # p: provision, c: change, r: rotate, v: revoke
    runbook: bool = True
    drill: str = ""  # "recent" (passed), "stale" (passed long ago), "failed", "" (never)
    status: str = "active"
    credentials: tuple[Cred | Use, ...] = ()


EMAIL_DOMAIN = "example.com"

TEAMS = {
    "payments": TeamSpec("Payments Platform", "payments", "maria.gonzalez",
                         "Card acquiring, payouts, the ledger and the payments API."),
    "data": TeamSpec("Data Engineering", "data-eng", "kenji.watanabe",
                     "The analytics warehouse, its pipelines and the ML feature store."),
    "infra": TeamSpec("Infrastructure", "infra", "helen.carter",
                      "Cloud accounts, Kubernetes, hosts, PKI and the CI runners."),
}

PEOPLE = (
    PersonSpec("maria.gonzalez", "María", "González", "Engineering Manager, Payments Platform", "payments"),
    PersonSpec("james.whitaker", "James", "Whitaker", "Senior Software Engineer", "payments"),
    PersonSpec("aisha.bello", "Aisha", "Bello", "Site Reliability Engineer", "payments"),
    PersonSpec("lukas.schneider", "Lukas", "Schneider", "Software Engineer", "payments"),
    PersonSpec("chen.wei", "Chen", "Wei", "Finance Operations Analyst", "payments"),
    PersonSpec("kenji.watanabe", "Kenji", "Watanabe", "Head of Data Engineering", "data"),
    PersonSpec("sofia.rossi", "Sofia", "Rossi", "Data Engineer", "data"),
    PersonSpec("tomas.lindqvist", "Tomas", "Lindqvist", "Senior Data Engineer", "data", departs=True),
    PersonSpec("grace.obi", "Grace", "Obi", "Analytics Engineer", "data"),
    PersonSpec("arjun.mehta", "Arjun", "Mehta", "Machine Learning Engineer", "data"),
    PersonSpec("helen.carter", "Helen", "Carter", "Infrastructure Engineering Manager", "infra"),
    PersonSpec("david.kim", "David", "Kim", "Staff Platform Engineer", "infra"),
    PersonSpec("priya.raman", "Priya", "Raman", "Cloud Security Engineer", "infra", departs=True),
    PersonSpec("oliver.bennett", "Oliver", "Bennett", "DevOps Engineer", "infra"),
    PersonSpec("fatima.haddad", "Fatima", "Haddad", "Site Reliability Engineer", "infra"),
)

# Sign-in personas for the demo (STYLE.md: named personas). Roles are granted by governance.demo.
PERSONAS = (
    PersonSpec("demo-owner", "Dana", "Owner", "Payments engineer (demo persona: owner)", "payments"),
    PersonSpec("demo-approver", "Avery", "Approver", "Platform lead (demo persona: approver)", "infra"),
    PersonSpec("demo-auditor", "Alex", "Auditor", "Internal auditor (demo persona: auditor)"),
    PersonSpec("demo-secadmin", "Sam", "Secadmin", "Security administrator (demo persona: security admin)"),
)

SYSTEMS = (
    SystemSpec("payments-api", "Card and bank payment API and its microservices (Kubernetes, eu-west-1).",
               Environment.PROD, C.CRITICAL, "maria.gonzalez", "payments"),
    SystemSpec("payments-db", "PostgreSQL 16 cluster behind the payments API and the ledger.",
               Environment.PROD, C.CRITICAL, "aisha.bello", "payments"),
    SystemSpec("stripe", "Stripe account for card acquiring, refunds and payouts.",
               Environment.PROD, C.HIGH, "james.whitaker", "payments",
               third_party=True, vendor="Stripe, Inc."),
    SystemSpec("legacy-billing", "The billing system the payments API replaced; kept read-only for audits.",
               Environment.PROD, C.MEDIUM, "james.whitaker", "payments",
               retire_reason="Replaced by the payments API; invoices archived to the warehouse."),
    SystemSpec("analytics-warehouse", "ClickHouse analytics warehouse and its object-storage landing zone.",
               Environment.PROD, C.HIGH, "kenji.watanabe", "data"),
    SystemSpec("aws-prod", "AWS production account 482913570264 (eu-west-1, us-east-1).",
               Environment.PROD, C.CRITICAL, "helen.carter", "infra"),
    SystemSpec("k8s-staging", "Staging Kubernetes cluster shared by every team.",
               Environment.STAGING, C.MEDIUM, "oliver.bennett", "infra"),
    SystemSpec("dev-sandbox", "AWS developer sandbox account 739104826351.",
               Environment.DEV, C.LOW, "david.kim", "infra"),
)

OPENBAO_ADDRESS = "http://127.0.0.1:8200"

STORES = (
    StoreSpec("openbao-prod", SecretStoreKind.OPENBAO_KV, OPENBAO_ADDRESS,
              "OpenBao KV v2: the default home of every application secret.",
              {"mount": "secret"}, "STEWARD_OPENBAO_TOKEN"),
    StoreSpec("openbao-pki", SecretStoreKind.OPENBAO_PKI, OPENBAO_ADDRESS,
              "OpenBao PKI: the internal CA for service and ingress certificates.",
              {"mount": "pki", "role": "internal-services"}, "STEWARD_OPENBAO_TOKEN"),
    StoreSpec("aws-secrets-prod", SecretStoreKind.AWS_SECRETS_MANAGER,
              "https://secretsmanager.eu-west-1.amazonaws.com",
              "AWS Secrets Manager in the production account, for Lambda and EventBridge.",
              {"region": "eu-west-1", "account": "482913570264"}, "STEWARD_AWS_ROLE_ARN"),
    StoreSpec("k8s-staging-secrets", SecretStoreKind.KUBERNETES_SECRET,
              "https://k8s-staging.example.com:6443",
              "Kubernetes secrets in the staging cluster.",
              {"context": "staging", "namespace_prefix": "staging-"}, "STEWARD_KUBECONFIG"),
    StoreSpec("legacy-config-files", SecretStoreKind.CONFIG_FILE,
              "https://gitlab.example.com/ops/legacy-config",
              "Settings files in an old operations repository (unmanaged: a finding by itself)."),
    StoreSpec("gitlab-ci-variables", SecretStoreKind.CICD_VARIABLE, "https://gitlab.example.com",
              "Masked CI/CD variables in GitLab projects (unmanaged: no rotation, no access log)."),
    StoreSpec("ops-spreadsheet", SecretStoreKind.SPREADSHEET,
              "https://sharepoint.example.com/sites/ops/Shared Documents/service-accounts.xlsx",
              "The operations team's spreadsheet of service accounts (unmanaged)."),
)

# Default scopes by system and privilege level, when a credential does not name its own.
SCOPES = {
    "payments-api": {"read": ["payments:read"], "write": ["payments:read", "payments:write"],
                     "admin": ["payments:admin"]},
    "payments-db": {"read": ["ledger:select"], "write": ["ledger:select", "ledger:insert", "ledger:update"],
                    "admin": ["ledger:ddl", "roles:manage"]},
    "stripe": {"read": ["balance:read", "payouts:read"], "write": ["charges:read", "refunds:write"],
               "admin": ["account:write"]},
    "legacy-billing": {"read": ["invoices:read"], "write": ["invoices:read", "invoices:export"],
                       "admin": ["billing:admin"]},
    "analytics-warehouse": {"read": ["warehouse:select"], "write": ["warehouse:select", "warehouse:insert"],
                            "admin": ["warehouse:ddl", "warehouse:grant"]},
    "aws-prod": {"read": ["s3:GetObject", "s3:ListBucket"], "write": ["s3:GetObject", "s3:PutObject"],
                 "admin": ["iam:CreateRole", "iam:AttachRolePolicy"]},
    "k8s-staging": {"read": ["get", "list", "watch"], "write": ["get", "list", "create", "update", "patch"],
                    "admin": ["cluster-admin"]},
    "dev-sandbox": {"read": ["ec2:DescribeInstances"],
                    "write": ["ec2:RunInstances", "ec2:TerminateInstances"],
                    "admin": ["iam:CreateRole"]},
}

# Kind-specific scopes: what an SSH key or a certificate allows does not depend on the system.
SSH_SCOPES = {
    "read": ["ssh:login"], "write": ["ssh:login", "sudo:restricted"], "admin": ["ssh:login", "sudo:all"],
}


def default_scopes(cred: Cred) -> list[str]:
    """The scopes of a credential that does not name its own."""
    if cred.kind == K.SSH_KEY:
        return list(SSH_SCOPES[cred.privilege])
    if cred.kind == K.CERTIFICATE:
        if "signing" in cred.name:
            return ["document:sign"]
        return ["tls:client"] if "client" in cred.name or "mtls" in cred.name else ["tls:server"]
    return list(SCOPES[cred.system][cred.privilege])


HUMAN_USE_EVIDENCE = {
    "svc-invoice-bot": (
        "Database audit log: interactive psql sessions as svc-invoice-bot from workstation FIN-LT-0231 "
        "on three working days, outside the robot's schedule. The account is shared with the finance team."
    ),
    "triage-agent-pager-token": (
        "Paging provider audit: the agent's token acknowledged incidents from a desktop browser "
        "(Firefox on macOS) during two night shifts; the agent runs headless in Kubernetes."
    ),
}

SHUTDOWN = {
    "GitHub Actions": "Disable the workflow in the repository (Actions > {name} > Disable workflow) and "
                      "cancel running jobs; remove the environment's deployment protection bypass.",
    "GitLab CI": "Deactivate the pipeline schedule for {name}, protect the deploy branch and cancel running "
                 "pipelines.",
    "Jenkins": "Disable the Jenkins job {name} and abort running builds; take the agent offline if needed.",
    "Ansible": "Disable the AWX job template {name} and its schedule; remove the template's execute role.",
    "Airflow": "Pause the DAG (airflow dags pause {name}) and mark running task instances failed.",
    "LangGraph": "Scale the {name} deployment to zero, drain its task queue and revoke its tool grants.",
    "CrewAI": "Stop the {name} crew service and revoke its tool grants.",
    "UiPath": "Stop the unattended robot for {name} in Orchestrator and disable its trigger.",
    "AWS EventBridge": "Disable the EventBridge rule {name} and its API destination.",
    "Kafka Connect": "Pause the connector (PUT /connectors/{name}/pause) and drop its replication slot.",
    "AWS Lambda": "Set the reserved concurrency of {name} to zero and disable its triggers.",
    "AWS Step Functions": "Disable the EventBridge trigger of the {name} state machine and stop running "
                          "executions.",
}

R, W, A = "read", "write", "admin"
KV, PKI, ASM, K8S = "openbao-prod", "openbao-pki", "aws-secrets-prod", "k8s-staging-secrets"
CONFIG, CICD, SHEET = "legacy-config-files", "gitlab-ci-variables", "ops-spreadsheet"
GHA, GL, JENKINS, ANSIBLE, AIRFLOW = "GitHub Actions", "GitLab CI", "Jenkins", "Ansible", "Airflow"
WK = WorkflowKind

FLOWS = (
    # Payments Platform
    Flow("payments-api-deploy", WK.CICD_PIPELINE, GHA, "payments", "demo-owner", ("payments-api", "aws-prod"),
         C.CRITICAL, "Builds, tests and deploys the payments API microservices to production.",
         drill="recent",
         credentials=(
             Cred("svc-payments-deploy", K.SERVICE_ACCOUNT, "aws-prod", KV, "assume the deploy role", W),
             Cred("payments-ecr-push", K.API_KEY, "aws-prod", KV, "push images to the container registry", W),
             Cred("payments-argocd-token", K.ACCESS_TOKEN, "payments-api", KV, "trigger the Argo CD sync", W),
             Cred("svc-shared-ci-deployer", K.API_KEY, "aws-prod", KV, "upload release artefacts", W),
         )),
    Flow("payments-db-migrations", WK.CICD_PIPELINE, GHA, "payments", "demo-owner", ("payments-db",),
         C.HIGH, "Applies reviewed schema migrations to the payments database.", powers="c", drill="failed",
         credentials=(
             Cred("payments_migrator", K.PASSWORD, "payments-db", KV, "apply schema migrations", A,
                  problems=("overdue",)),
             Cred("payments-db-bastion-ssh", K.SSH_KEY, "payments-db", KV,
                  "reach the database via the bastion"),
             Cred("payments-db-client-tls", K.CERTIFICATE, "payments-db", PKI, "mutual TLS to the database",
                  problems=("expiring",)),
         )),
    Flow("checkout-web-release", WK.CICD_PIPELINE, GHA, "payments", "lukas.schneider", ("payments-api",),
         C.HIGH, "Releases the checkout web front end and purges the CDN.", drill="recent",
         credentials=(
             Cred("checkout-cdn-purge", K.API_KEY, "payments-api", KV, "purge the CDN after a release", W),
             Cred("checkout-sentry-release", K.ACCESS_TOKEN, "payments-api", KV, "record the release", W),
             Cred("checkout-web-tls", K.CERTIFICATE, "payments-api", PKI, "serve checkout.example.com"),
             Cred("checkout-github-app", K.OAUTH_CLIENT, "payments-api", KV, "open release pull requests", W),
             Use("svc-shared-ci-deployer", "upload the static bundle"),
         )),
    Flow("stripe-payout-reconciliation", WK.SCHEDULED_JOB, JENKINS, "payments", "james.whitaker",
         ("stripe", "payments-db"), C.HIGH, "Matches Stripe payouts with ledger entries every night.",
         drill="stale",
         credentials=(
             Cred("stripe-reconciliation-key", K.API_KEY, "stripe", KV,
                  "read balance transactions and payouts",
                  problems=("unreviewed",)),
             Cred("payments_recon_ro", K.PASSWORD, "payments-db", KV, "read the ledger"),
             Cred("jenkins-payments-agent-ssh", K.SSH_KEY, "payments-api", KV, "connect the Jenkins agent",
                  W),
         )),
    Flow("ledger-nightly-close", WK.SCHEDULED_JOB, JENKINS, "payments", "james.whitaker", ("payments-db",),
         C.CRITICAL, "Closes the day in the ledger and delivers the closing report to finance.",
         drill="recent",
         credentials=(
             Cred("payments_ledger_rw", K.PASSWORD, "payments-db", KV, "post closing entries", W),
             Cred("svc-ledger-close", K.SERVICE_ACCOUNT, "payments-db", KV, "run the close procedure", W),
             Cred("ledger-export-signing", K.CERTIFICATE, "payments-api", PKI,
                  "sign the daily ledger export"),
             Cred("ledger-report-sftp", K.SSH_KEY, "payments-api", CONFIG, "deliver the report by SFTP", W,
                  path="ledger/config/sftp.yaml#finance_drop.key_file"),
             Use("jenkins-payments-agent-ssh", "connect the Jenkins agent"),
         )),
    Flow("legacy-billing-export", WK.SCHEDULED_JOB, JENKINS, "payments", "demo-owner",
         ("legacy-billing", "payments-db"), C.MEDIUM,
         "Copies archived invoices from the old billing system into the payments database.", runbook=False,
         credentials=(
             Cred("billing_export", K.PASSWORD, "legacy-billing", CONFIG,
                  "read invoices from the old database",
                  problems=("overdue",), path="legacy-billing/config/settings.yaml#database.password"),
             Cred("legacy-billing-api-key", K.API_KEY, "legacy-billing", CONFIG, "call the export API", W,
                  path="legacy-billing/config/settings.yaml#export_api.key"),
             Cred("legacy-billing-sftp", K.SSH_KEY, "legacy-billing", KV, "fetch archived invoice files"),
             Cred("legacy-billing-tls", K.CERTIFICATE, "legacy-billing", PKI, "serve billing.example.com",
                  status="revoked"),
             Use("jenkins-payments-agent-ssh", "connect the Jenkins agent"),
         )),
    Flow("payments-tls-renewal", WK.RUNBOOK, ANSIBLE, "payments", "aisha.bello", ("payments-api",), C.HIGH,
         "Renews the payments ingress and service certificates from the internal CA.", powers="r",
         drill="recent",
         credentials=(
             Cred("payments-pki-approle", K.SERVICE_ACCOUNT, "payments-api", KV, "issue certificates", W),
             Cred("payments-api-tls", K.CERTIFICATE, "payments-api", PKI, "serve api.payments.example.com",
                  problems=("expiring",)),
             Cred("ansible-payments-ingress-ssh", K.SSH_KEY, "payments-api", KV,
                  "connect to the ingress hosts", W),
         )),
    Flow("refund-assistant-agent", WK.AI_AGENT, "LangGraph", "payments", "demo-owner",
         ("stripe", "payments-api", "aws-prod"),
         C.HIGH, "Answers refund requests from support and issues refunds below the agent's limit.",
         credentials=(
             Cred("stripe-refunds-key", K.API_KEY, "stripe", KV, "create refunds up to the agent's limit", W,
                  problems=("unreviewed",)),
             Cred("refund-agent-payments-client", K.OAUTH_CLIENT, "payments-api", KV,
                  "read payments and open refund cases", W),
             Cred("refund-agent-session-token", K.ACCESS_TOKEN, "payments-api", KV, "call the case API", W),
             Cred("refund-agent-model-role", K.SERVICE_ACCOUNT, "aws-prod", KV, "call the model endpoint"),
         )),
    Flow("invoice-matching-bot", WK.RPA_BOT, "UiPath", "payments", "chen.wei", ("payments-db",), C.MEDIUM,
         "Matches supplier invoices in the finance back office.", runbook=False,
         credentials=(
             Cred("svc-invoice-bot", K.SERVICE_ACCOUNT, "payments-db", SHEET, "sign in to the back office", W,
                  problems=("human-use",), path="service-accounts.xlsx#Finance!C14"),
             Cred("invoice_bot_ro", K.PASSWORD, "payments-db", SHEET, "read open invoices",
                  problems=("overdue",), path="service-accounts.xlsx#Finance!C15"),
         )),
    Flow("stripe-webhook-relay", WK.INTEGRATION, "AWS EventBridge", "payments", "maria.gonzalez",
         ("stripe", "payments-api",
          "aws-prod"), C.HIGH, "Relays Stripe webhooks to the payments event bus.", drill="recent",
         credentials=(
             Cred("stripe-webhook-signing", K.API_KEY, "stripe", ASM, "verify webhook signatures"),
             Cred("stripe-connect-oauth", K.OAUTH_CLIENT, "stripe", ASM, "act for connected accounts", W,
                  problems=("unreviewed",)),
             Cred("payments-events-publisher", K.SERVICE_ACCOUNT, "aws-prod", ASM, "publish to the event bus",
                  W),
             Cred("stripe-hooks-tls", K.CERTIFICATE, "payments-api", PKI, "serve hooks.payments.example.com"),
         )),
    Flow("payments-secrets-rotation", WK.RUNBOOK, ANSIBLE, "payments", "aisha.bello",
         ("payments-db", "payments-api"), C.CRITICAL,
         "Rotates the payments database roles and writes the new values to OpenBao.", powers="rv",
         drill="recent",
         credentials=(
             Cred("payments-rotation-approle", K.SERVICE_ACCOUNT, "payments-api", KV, "write rotated values",
                  A),
             Cred("payments_rotation_admin", K.PASSWORD, "payments-db", KV, "alter application roles", A),
             Cred("payments-rotation-ssh", K.SSH_KEY, "payments-db", KV, "run the playbook on the bastion",
                  W),
         )),
    Flow("fraud-score-sync", WK.SCHEDULED_JOB, AIRFLOW, "payments", "demo-owner",
         ("payments-api", "analytics-warehouse"), C.MEDIUM,
         "Pushes the fraud model's scores from the warehouse to the payments API every hour.",
         credentials=(
             Cred("fraud-scores-api-key", K.API_KEY, "payments-api", KV, "push scores to the payments API", W,
                  problems=("overdue-policy",)),
             Cred("fraud_scores_reader", K.PASSWORD, "analytics-warehouse", CICD, "read model scores",
                  path="payments/fraud-score-sync#WAREHOUSE_PASSWORD"),
             Cred("fraud-sync-oauth", K.OAUTH_CLIENT, "payments-api", KV, "obtain API tokens", W),
         )),
    # Data Engineering
    Flow("warehouse-nightly-load", WK.SCHEDULED_JOB, AIRFLOW, "data", "tomas.lindqvist",
         ("analytics-warehouse", "aws-prod"), C.HIGH, "Loads the nightly extracts of every source.",
         drill="stale",
         credentials=(
             Cred("svc-warehouse-loader", K.SERVICE_ACCOUNT, "analytics-warehouse", KV, "load staged files",
                  W),
             Cred("warehouse-landing-reader", K.API_KEY, "aws-prod", KV, "read the landing bucket"),
             Cred("etl_shared", K.PASSWORD, "analytics-warehouse", KV, "write to the staging schema", W),
         )),
    Flow("adhoc-s3-bucket-sync", WK.SCHEDULED_JOB, AIRFLOW, None, "tomas.lindqvist", ("aws-prod",), C.MEDIUM,
         "Copies partner drops between buckets; set up as a one-off and never handed over.", runbook=False,
         credentials=(
             Cred("tomas-s3-sync-key", K.API_KEY, "aws-prod", CONFIG, "copy objects between buckets", W,
                  problems=("overdue",), path="airflow-dags/config/connections.env#S3_SYNC_SECRET_KEY"),
         )),
    Flow("marketing-attribution-export", WK.SCHEDULED_JOB, AIRFLOW, None, "tomas.lindqvist",
         ("analytics-warehouse",), C.MEDIUM, "Exports attribution tables for the marketing agency.",
         runbook=False,
         credentials=(
             Cred("attribution-export-oauth", K.OAUTH_CLIENT, "analytics-warehouse", KV,
                  "read attribution marts"),
             Cred("attribution-sftp-key", K.SSH_KEY, "analytics-warehouse", SHEET,
                  "drop files for the agency", W,
                  path="service-accounts.xlsx#Marketing!C4"),
             Use("etl_shared", "stage the export tables"),
         )),
    Flow("dbt-build-prod", WK.CICD_PIPELINE, GL, "data", "sofia.rossi", ("analytics-warehouse",), C.HIGH,
         "Runs the dbt project against production after every merge.", drill="recent",
         credentials=(
             Cred("svc-dbt-prod", K.SERVICE_ACCOUNT, "analytics-warehouse", KV, "run dbt models", W),
             Cred("svc-dbt-ci", K.SERVICE_ACCOUNT, "analytics-warehouse", KV, "run dbt tests in CI"),
             Cred("dbt_prod", K.PASSWORD, "analytics-warehouse", CICD, "dbt connection profile", W,
                  path="data/dbt-project#DBT_PROD_PASSWORD"),
             Cred("dbt-docs-deploy-token", K.ACCESS_TOKEN, "analytics-warehouse", KV, "publish the dbt docs",
                  W),
         )),
    Flow("warehouse-schema-migrations", WK.CICD_PIPELINE, GL, "data", "sofia.rossi", ("analytics-warehouse",),
         C.HIGH, "Applies DDL migrations to the warehouse.", powers="c", drill="failed",
         credentials=(
             Cred("warehouse_migrator", K.PASSWORD, "analytics-warehouse", KV, "apply DDL migrations", A),
             Cred("warehouse-migrations-deploy-key", K.SSH_KEY, "analytics-warehouse", KV,
                  "check out migrations"),
         )),
    Flow("customer-360-refresh", WK.SCHEDULED_JOB, AIRFLOW, "data", "grace.obi",
         ("analytics-warehouse", "payments-db"), C.MEDIUM, "Rebuilds the customer 360 mart every morning.",
         drill="recent",
         credentials=(
             Cred("c360_payments_ro", K.PASSWORD, "payments-db", KV, "read customer payment history"),
             Cred("c360-crm-oauth", K.OAUTH_CLIENT, "analytics-warehouse", KV, "read CRM accounts"),
             Cred("c360-support-desk-key", K.API_KEY, "analytics-warehouse", KV, "read support tickets"),
             Use("etl_shared", "write the customer 360 mart"),
         )),
    Flow("finance-kpi-snapshot", WK.SCHEDULED_JOB, AIRFLOW, "data", "grace.obi", ("analytics-warehouse",),
         C.LOW,
         "Snapshots the finance KPIs for the monthly board pack.",
         credentials=(
             Cred("finance_kpi_ro", K.PASSWORD, "analytics-warehouse", KV, "read finance marts"),
             Cred("kpi-dashboard-token", K.ACCESS_TOKEN, "analytics-warehouse", KV, "refresh the dashboard",
                  W,
                  problems=("overdue",)),
         )),
    Flow("ml-feature-pipeline", WK.SCHEDULED_JOB, AIRFLOW, "data", "arjun.mehta",
         ("analytics-warehouse", "aws-prod"), C.MEDIUM, "Computes model features and writes snapshots to S3.",
         drill="stale",
         credentials=(
             Cred("svc-ml-features", K.SERVICE_ACCOUNT, "aws-prod", KV, "assume the feature-store role", W),
             Cred("ml-feature-bucket-key", K.API_KEY, "aws-prod", KV, "write feature snapshots", W),
             Use("etl_shared", "read staged events"),
         )),
    Flow("data-quality-agent", WK.AI_AGENT, "LangGraph", "data", "arjun.mehta",
         ("analytics-warehouse", "aws-prod"), C.MEDIUM, "Profiles new tables and opens data-quality tickets.",
         credentials=(
             Cred("dq_agent_reader", K.PASSWORD, "analytics-warehouse", KV, "profile tables"),
             Cred("dq-agent-ticket-token", K.ACCESS_TOKEN, "analytics-warehouse", KV, "open tickets", W),
             Cred("dq-agent-model-role", K.SERVICE_ACCOUNT, "aws-prod", KV, "call the model endpoint"),
         )),
    Flow("warehouse-access-provisioner", WK.RUNBOOK, ANSIBLE, "data", "kenji.watanabe",
         ("analytics-warehouse",),
         C.HIGH, "Creates and drops warehouse roles from approved access requests.", powers="pv",
         drill="recent",
         credentials=(
             Cred("warehouse_access_admin", K.PASSWORD, "analytics-warehouse", KV, "create and drop roles",
                  A),
             Cred("warehouse-provisioner-ssh", K.SSH_KEY, "analytics-warehouse", KV, "connect to the hosts",
                  W),
         )),
    Flow("sql-report-agent", WK.AI_AGENT, "CrewAI", "data", "arjun.mehta", ("analytics-warehouse",), C.MEDIUM,
         "Proposed: answers ad-hoc reporting questions in SQL.", runbook=False, status="proposed",
         credentials=(
             Cred("sql_agent_reader", K.PASSWORD, "analytics-warehouse", KV, "answer reporting questions",
                  status="requested"),
         )),
    Flow("kafka-cdc-connector", WK.INTEGRATION, "Kafka Connect", "data", "sofia.rossi",
         ("payments-db", "analytics-warehouse"), C.HIGH, "Streams ledger changes into the warehouse.",
         drill="stale",
         credentials=(
             Cred("payments_cdc_replication", K.PASSWORD, "payments-db", KV, "read the replication slot"),
             Cred("kafka-connect-client-tls", K.CERTIFICATE, "analytics-warehouse", PKI, "TLS to the brokers",
                  problems=("expired",)),
             Cred("svc-kafka-connect", K.SERVICE_ACCOUNT, "analytics-warehouse", KV, "SASL user", W),
         )),
    # Infrastructure
    Flow("terraform-aws-prod-apply", WK.IAC_APPLY, GL, "infra", "david.kim", ("aws-prod",), C.CRITICAL,
         "Plans and applies the production Terraform after approval.", powers="pcv", drill="recent",
         credentials=(
             Cred("svc-terraform-prod", K.SERVICE_ACCOUNT, "aws-prod", KV, "apply Terraform", A,
                  scopes=("*",)),
             Cred("svc-terraform-plan", K.SERVICE_ACCOUNT, "aws-prod", KV, "plan without applying"),
             Cred("terraform-state-key", K.API_KEY, "aws-prod", KV, "read and lock the state bucket", W),
             Cred("terraform-modules-deploy-key", K.SSH_KEY, "aws-prod", KV, "fetch private modules"),
         )),
    Flow("terraform-aws-dev-apply", WK.IAC_APPLY, GL, "infra", "oliver.bennett", ("dev-sandbox",), C.LOW,
         "Applies the sandbox Terraform on every merge.", powers="pc",
         credentials=(
             Cred("svc-terraform-dev", K.SERVICE_ACCOUNT, "dev-sandbox", CICD,
                  "assume the sandbox admin role", A,
                  path="infra/terraform-sandbox#AWS_ROLE_ARN"),
             Cred("sandbox-terraform-key", K.API_KEY, "dev-sandbox", CICD, "state bucket in the sandbox", W,
                  problems=("overdue",), path="infra/terraform-sandbox#AWS_SECRET_ACCESS_KEY"),
         )),
    Flow("k8s-staging-deploy", WK.CICD_PIPELINE, GL, "infra", "oliver.bennett", ("k8s-staging",), C.MEDIUM,
         "Deploys every team's services to the staging cluster.", drill="recent",
         credentials=(
             Cred("staging-registry-pull", K.ACCESS_TOKEN, "k8s-staging", K8S, "pull images"),
             Cred("staging-ingress-tls", K.CERTIFICATE, "k8s-staging", PKI, "serve *.staging.example.com",
                  problems=("expiring",)),
         )),
    Flow("aws-iam-key-rotator", WK.RUNBOOK, ANSIBLE, "infra", "priya.raman", ("aws-prod",), C.CRITICAL,
         "Rotates IAM access keys older than their policy and stores the new keys in OpenBao.", powers="rv",
         drill="failed",
         credentials=(
             Cred("svc-iam-rotator", K.SERVICE_ACCOUNT, "aws-prod", KV, "create and delete IAM access keys",
                  A,
                  scopes=("iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:UpdateAccessKey")),
             Cred("iam-rotator-chat-token", K.ACCESS_TOKEN, "aws-prod", KV, "post rotation results", W),
         )),
    Flow("cloudtrail-log-forwarder", WK.INTEGRATION, "AWS Lambda", None, "priya.raman", ("aws-prod",), C.HIGH,
         "Forwards CloudTrail to the SIEM; built during an incident and never handed over.", runbook=False,
         credentials=(
             Cred("cloudtrail-forwarder-key", K.API_KEY, "aws-prod", ASM, "read CloudTrail from S3",
                  problems=("overdue",)),
             Cred("siem-ingest-token", K.ACCESS_TOKEN, "aws-prod", ASM, "send events to the SIEM", W),
         )),
    Flow("os-patching-weekly", WK.RUNBOOK, ANSIBLE, "infra", "fatima.haddad", ("aws-prod", "k8s-staging"),
         C.HIGH,
         "Patches and reboots hosts group by group every Tuesday.", powers="c", drill="recent",
         credentials=(
             Cred("patching-ssm-role", K.SERVICE_ACCOUNT, "aws-prod", KV, "run SSM commands", W),
             Cred("ansible-staging-nodes-ssh", K.SSH_KEY, "k8s-staging", KV, "connect to staging nodes", A),
         )),
    Flow("bastion-ssh-key-sync", WK.RUNBOOK, ANSIBLE, "infra", "fatima.haddad", ("aws-prod", "dev-sandbox"),
         C.HIGH, "Pushes engineers' authorised keys to the bastions and removes leavers' keys.", powers="pv",
         drill="stale",
         credentials=(
             Cred("bastion-key-sync-role", K.SERVICE_ACCOUNT, "aws-prod", KV, "manage authorised keys", A),
             Cred("bastion-sync-ssh", K.SSH_KEY, "aws-prod", KV, "connect to the bastions", A,
                  problems=("overdue",)),
             Cred("sandbox-bastion-ssh", K.SSH_KEY, "dev-sandbox", KV, "connect to the sandbox bastion", A),
         )),
    Flow("staging-certificate-issuer", WK.RUNBOOK, ANSIBLE, "infra", "oliver.bennett", ("k8s-staging",),
         C.MEDIUM,
         "Issues and renews certificates for staging services.", powers="r", drill="recent",
         credentials=(
             Cred("staging-pki-approle", K.SERVICE_ACCOUNT, "k8s-staging", KV, "issue staging certificates",
                  W),
             Cred("staging-api-tls", K.CERTIFICATE, "k8s-staging", PKI, "serve api.staging.example.com"),
             Cred("staging-grafana-tls", K.CERTIFICATE, "k8s-staging", PKI,
                  "serve grafana.staging.example.com",
                  problems=("expired",)),
         )),
    Flow("infra-config-backup", WK.SCHEDULED_JOB, JENKINS, "infra", "demo-approver", ("aws-prod",), C.MEDIUM,
         "Backs up host and network configuration every night.",
         credentials=(
             Cred("backup-bucket-writer", K.API_KEY, "aws-prod", KV, "write encrypted backups", W),
             Cred("jenkins-backup-ssh", K.SSH_KEY, "aws-prod", CONFIG, "copy configuration from hosts",
                  path="jenkins/config/backup.ini#ssh.identity"),
         )),
    Flow("incident-triage-agent", WK.AI_AGENT, "LangGraph", "infra", "david.kim", ("k8s-staging", "aws-prod"),
         C.HIGH, "Triages alerts, gathers diagnostics and disables keys it finds leaked.", powers="v",
         drill="failed",
         credentials=(
             Cred("triage-agent-k8s", K.SERVICE_ACCOUNT, "k8s-staging", K8S, "read pods and events", W),
             Cred("triage-agent-model-role", K.SERVICE_ACCOUNT, "aws-prod", KV, "call the model endpoint"),
             Cred("triage-agent-aws-key", K.API_KEY, "aws-prod", KV, "read CloudWatch; disable leaked keys",
                  A),
             Cred("triage-agent-pager-token", K.ACCESS_TOKEN, "aws-prod", KV, "acknowledge pages", W,
                  problems=("human-use",)),
         )),
    Flow("runner-autoscaler", WK.SCHEDULED_JOB, GL, "infra", "oliver.bennett", ("dev-sandbox",), C.LOW,
         "Starts and stops GitLab runner instances with the queue length.", powers="p", runbook=False,
         credentials=(
             Cred("runner-autoscaler-key", K.API_KEY, "dev-sandbox", CICD, "start and stop runner instances",
                  W,
                  path="infra/runner-autoscaler#AWS_SECRET_ACCESS_KEY"),
             Cred("runner-registration-token", K.ACCESS_TOKEN, "dev-sandbox", CICD, "register runners", A,
                  scopes=("admin:*",), path="infra/runner-autoscaler#RUNNER_REGISTRATION_TOKEN"),
         )),
    Flow("dns-records-sync", WK.IAC_APPLY, GHA, "infra", "demo-approver", ("aws-prod",), C.HIGH,
         "Applies DNS record changes from the zone repository.", powers="c", drill="recent",
         credentials=(
             Cred("dns-route53-key", K.API_KEY, "aws-prod", KV, "change Route 53 records", W),
             Use("svc-shared-ci-deployer", "read the zone artefacts"),
         )),
    Flow("openbao-audit-export", WK.SCHEDULED_JOB, JENKINS, "infra", "fatima.haddad", ("aws-prod",), C.MEDIUM,
         "Archives the OpenBao audit device to S3 every hour.", drill="stale",
         credentials=(
             Cred("openbao-audit-reader", K.SERVICE_ACCOUNT, "aws-prod", KV, "read the audit device"),
             Cred("audit-archive-key", K.API_KEY, "aws-prod", ASM, "write to the archive bucket", W),
             Cred("openbao-audit-client-tls", K.CERTIFICATE, "aws-prod", PKI,
                  "TLS client to the audit socket"),
         )),
    Flow("guardduty-auto-remediation", WK.RUNBOOK, "AWS Step Functions", None, "priya.raman", ("aws-prod",),
         C.CRITICAL, "Quarantines instances and disables keys on high-severity GuardDuty findings.",
         powers="cv",
         drill="failed",
         credentials=(
             Cred("svc-guardduty-remediation", K.SERVICE_ACCOUNT, "aws-prod", ASM, "quarantine and disable",
                  A,
                  scopes=("*",)),
             Cred("remediation-chat-token", K.ACCESS_TOKEN, "aws-prod", ASM, "post to the security channel",
                  W),
         )),
    Flow("cloud-cost-advisor-agent", WK.AI_AGENT, "LangGraph", "infra", "helen.carter", ("aws-prod",), C.LOW,
         "Suggests savings from Cost Explorer data; suspended while its output is reviewed.",
         status="suspended",
         credentials=(
             Cred("cost-explorer-reader", K.API_KEY, "aws-prod", KV, "read Cost Explorer",
                  status="suspended"),
         )),
    Flow("k8s-staging-smoke-tests", WK.CICD_PIPELINE, GHA, "infra", "fatima.haddad", ("k8s-staging",), C.LOW,
         "Runs smoke tests against staging after each deploy.", runbook=False,
         credentials=(
             Cred("smoke-tests-k8s-reader", K.SERVICE_ACCOUNT, "k8s-staging", K8S, "read service endpoints"),
             Cred("k8s-staging-admin-token", K.ACCESS_TOKEN, "k8s-staging", SHEET, "break-glass access", A,
                  scopes=("*",), path="service-accounts.xlsx#Kubernetes!C3"),
             Use("svc-shared-ci-deployer", "download the test bundle"),
         )),
)

# Fleets: one credential per service, source, host group or namespace, used by one workflow.
PAYMENTS_SERVICES = (
    ("ledger", ()), ("payouts", ()), ("refunds", ()), ("risk-engine", ()), ("notifications", ()),
    ("merchant-onboarding", ()), ("fx-rates", ()), ("settlement", ("overdue",)), ("disputes", ()),
    ("card-vault", ("overdue",)),
)
PAYMENTS_MTLS = (
    ("ledger", ()), ("payouts", ()), ("refunds", ()), ("risk-engine", ()), ("notifications", ()),
    ("merchant-onboarding", ()), ("fx-rates", ("expired",)), ("settlement", ()), ("disputes", ("expiring",)),
    ("card-vault", ()),
)
WAREHOUSE_SOURCES = (
    ("crm", K.OAUTH_CLIENT, KV, ()), ("support-desk", K.API_KEY, KV, ()),
    ("product-events", K.SERVICE_ACCOUNT, KV, ()), ("billing-history", K.PASSWORD, KV, ()),
    ("marketing-spend", K.API_KEY, SHEET, ()), ("hr-headcount", K.PASSWORD, KV, ("overdue",)),
    ("web-analytics", K.ACCESS_TOKEN, KV, ()), ("finance-ledger", K.PASSWORD, KV, ()),
)
PATCH_GROUPS = (
    ("web-tier", ()), ("batch-tier", ()), ("db-tier", ()), ("bastions", ()), ("monitoring", ()),
    ("ci-runners", ()), ("vpn-gateways", ("overdue",)), ("log-shippers", ()),
)
STAGING_NAMESPACES = ("payments", "checkout", "data", "observability", "ingress", "platform", "security",
                      "tools")


def fleet_credentials(flow_name: str) -> tuple[Cred, ...]:
    """The fleet credentials a workflow uses besides those listed on it."""
    if flow_name == "payments-api-deploy":
        return tuple(
            Cred(f"{svc}-deploy-key", K.SSH_KEY, "payments-api", KV, f"check out the {svc} repository",
                 problems=problems)
            for svc, problems in PAYMENTS_SERVICES
        )
    if flow_name == "payments-tls-renewal":
        return tuple(
            Cred(f"{svc}-mtls", K.CERTIFICATE, "payments-api", PKI, f"renew the {svc} service certificate",
                 problems=problems)
            for svc, problems in PAYMENTS_MTLS
        )
    if flow_name == "warehouse-nightly-load":
        return tuple(
            Cred(f"{src}-source-reader", kind, "analytics-warehouse", store, f"extract {src}",
                 problems=problems,
                 path=f"service-accounts.xlsx#Data!C{20 + i}" if store == SHEET else "")
            for i, (src, kind, store, problems) in enumerate(WAREHOUSE_SOURCES)
        )
    if flow_name == "os-patching-weekly":
        return tuple(
            Cred(f"ansible-{group}-ssh", K.SSH_KEY, "aws-prod", KV, f"patch the {group} hosts", W,
                 problems=problems)
            for group, problems in PATCH_GROUPS
        )
    if flow_name == "k8s-staging-deploy":
        return tuple(
            Cred(f"k8s-staging-{ns}-deployer", K.SERVICE_ACCOUNT, "k8s-staging", K8S,
                 f"deploy to staging-{ns}", W)
            for ns in STAGING_NAMESPACES
        )
    return ()


def certificate_hosts(system_name: str) -> list[str]:
    """The host names a demo system declares: those of its certificates (a demo certificate's name is its CN)."""
    names = {cred.name.lower() for flow in FLOWS for cred in (*flow.credentials, *fleet_credentials(flow.name))
             if isinstance(cred, Cred) and cred.kind == K.CERTIFICATE and cred.system == system_name}
    return sorted(names)
