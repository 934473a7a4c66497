"""Steward settings, read from environment variables (documented in README.md).

The embedded default (SQLite under var/, kombu's filesystem broker) needs no server;
production chooses PostgreSQL and Redis through DATABASE_URL and CELERY_BROKER_URL.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STEWARD_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

STEWARD_VERSION = "0.1.0"
STEWARD_ENV = env_str("STEWARD_ENV", "development")
PRODUCTION = STEWARD_ENV == "production"

_DEFAULT_SECRET_KEY = "steward-insecure-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", _DEFAULT_SECRET_KEY)
DEBUG = os.environ.get("DEBUG", "" if PRODUCTION else "1").lower() in ("1", "true", "yes", "on")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]

# Audit anchoring (docs/architecture.md, "Audit anchoring"): the chain's HMAC key and the checkpoints'
# Ed25519 signing key live outside the database; checkpoints go to one or more sinks (file, openbao, syslog).
STEWARD_AUDIT_CHAIN_KEY = env_str("STEWARD_AUDIT_CHAIN_KEY", "")
STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH = env_str("STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH", "")
# Steward's own OpenBao (webhook signing secrets; the audit key's default home): the token is read from the
# variable named by STEWARD_OPENBAO_TOKEN_ENV, never from the settings.
STEWARD_OPENBAO_ADDR = env_str("STEWARD_OPENBAO_ADDR", "")
STEWARD_OPENBAO_TOKEN_ENV = env_str("STEWARD_OPENBAO_TOKEN_ENV", "STEWARD_OPENBAO_TOKEN")
STEWARD_OPENBAO_KV_MOUNT = env_str("STEWARD_OPENBAO_KV_MOUNT", "secret")
STEWARD_AUDIT_OPENBAO_ADDR = env_str("STEWARD_AUDIT_OPENBAO_ADDR", STEWARD_OPENBAO_ADDR)
STEWARD_AUDIT_OPENBAO_TOKEN_ENV = env_str("STEWARD_AUDIT_OPENBAO_TOKEN_ENV", "STEWARD_OPENBAO_TOKEN")
STEWARD_AUDIT_OPENBAO_MOUNT = env_str("STEWARD_AUDIT_OPENBAO_MOUNT", "secret")
STEWARD_AUDIT_SIGNING_KEY = env_str("STEWARD_AUDIT_SIGNING_KEY", "")
STEWARD_AUDIT_SIGNING_KEY_FILE = os.environ.get("STEWARD_AUDIT_SIGNING_KEY_FILE", "" if PRODUCTION else str(
    VAR_DIR / "audit-signing-key.pem"))
STEWARD_AUDIT_CHECKPOINT_SINKS = env_list("STEWARD_AUDIT_CHECKPOINT_SINKS", ("file",))
STEWARD_AUDIT_CHECKPOINT_FILE = os.environ.get("STEWARD_AUDIT_CHECKPOINT_FILE", str(
    # Test servers and workers (per-process test databases) must not anchor into the development file.
    Path(tempfile.gettempdir()) / f"steward-test-audit-checkpoints-{os.getpid()}.jsonl" if STEWARD_ENV == "test"
    else VAR_DIR / "audit-checkpoints.jsonl"))
STEWARD_AUDIT_CHECKPOINT_OPENBAO_PATH = os.environ.get("STEWARD_AUDIT_CHECKPOINT_OPENBAO_PATH",
                                                       "steward/audit-checkpoints")
STEWARD_AUDIT_CHECKPOINT_SYSLOG_ADDRESS = env_str("STEWARD_AUDIT_CHECKPOINT_SYSLOG_ADDRESS", "/dev/log")
STEWARD_AUDIT_CHECKPOINT_INTERVAL_SECONDS = env_int("STEWARD_AUDIT_CHECKPOINT_INTERVAL_SECONDS", 300)

if PRODUCTION:
    problems = []
    if SECRET_KEY == _DEFAULT_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        problems.append("SECRET_KEY must be set to a random value of at least 50 characters")
    if not STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH and (len(STEWARD_AUDIT_CHAIN_KEY) < 32
                                                    or len(set(STEWARD_AUDIT_CHAIN_KEY)) < 5):
        problems.append("STEWARD_AUDIT_CHAIN_KEY must be a random value of at least 32 characters "
                        "(or STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH name it in OpenBao)")
    if STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH and not STEWARD_AUDIT_OPENBAO_ADDR:
        problems.append("STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH needs STEWARD_AUDIT_OPENBAO_ADDR "
                        "(or STEWARD_OPENBAO_ADDR)")
    if not STEWARD_AUDIT_SIGNING_KEY and not (STEWARD_AUDIT_SIGNING_KEY_FILE
                                              and Path(STEWARD_AUDIT_SIGNING_KEY_FILE).is_file()):
        problems.append("STEWARD_AUDIT_SIGNING_KEY or STEWARD_AUDIT_SIGNING_KEY_FILE (an existing file) must hold "
                        "the audit checkpoints' Ed25519 signing key")
    if set(STEWARD_AUDIT_CHECKPOINT_SINKS) - {"file", "openbao", "syslog"} or not STEWARD_AUDIT_CHECKPOINT_SINKS:
        problems.append("STEWARD_AUDIT_CHECKPOINT_SINKS must list file, openbao and/or syslog")
    if DEBUG:
        problems.append("DEBUG must be off")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must name the portal's host names")
    if problems:
        raise ImproperlyConfigured("STEWARD_ENV=production refuses to start: " + "; ".join(problems))
elif not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "csp",
    "governance",
    "reports",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.SessionLifetimeMiddleware",
    "portal.middleware.AuditContextMiddleware",
    "portal.middleware.RequestSizeLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    "portal.error_pages.FriendlyErrorPagesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.steward",
                "csp.context_processors.nonce",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'steward.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One test database per process, so that parallel test runs on one server never collide.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
    # Steward's queries are short index lookups, but their estimated costs (visibility subplans over a
    # million rows that never run) cross PostgreSQL's jit_above_cost: compiling took 96 of the 97 ms of
    # the owner's approval-request list at 1M credentials (bench/portal_scale.py). No JIT in its sessions.
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so concurrent writers queue instead
    # of failing with "database is locked" half-way through a transaction.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    # A file (not memory) so that threads share it; one per process so parallel runs never collide.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / f"test-steward-{os.getpid()}.sqlite3")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "governance.Person"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in hardening (django-axes): failed sign-ins are counted per (account, address) pair, so a stranger
# guessing names from one address locks out nobody else there, and nobody elsewhere is locked out of
# their own account. The address is the client's as seen through STEWARD_TRUSTED_PROXIES
# (portal/client_address.py): behind a proxy, list its address or network, or everyone shares its address.
STEWARD_TRUSTED_PROXIES = env_list("STEWARD_TRUSTED_PROXIES")
AXES_CLIENT_IP_CALLABLE = "portal.client_address.client_address"
AXES_FAILURE_LIMIT = env_int("STEWARD_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STEWARD_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Session lifetime: idle timeout and absolute lifetime (seconds).
STEWARD_SESSION_IDLE_SECONDS = env_int("STEWARD_SESSION_IDLE_SECONDS", 30 * 60)
STEWARD_SESSION_ABSOLUTE_SECONDS = env_int("STEWARD_SESSION_ABSOLUTE_SECONDS", 12 * 3600)
SESSION_COOKIE_AGE = STEWARD_SESSION_ABSOLUTE_SECONDS
# API Idempotency-Key: how long a running request holds its key (a dead worker's key is retryable after).
STEWARD_IDEMPOTENCY_LEASE_SECONDS = env_int("STEWARD_IDEMPOTENCY_LEASE_SECONDS", 120)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = os.environ.get("SECURE_SSL_REDIRECT", "1") == "1"
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from Steward's own static files, never inline; styles
# from the stylesheet, and a <style> element only with the response's nonce; no style attributes, no
# plugins, no framing, forms post only to Steward. The API docs page is no exception: its script is a file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# Request bodies: 2.5 MB (Django's default, stated here) for forms and API bodies; a multipart
# upload (the inventory import) may carry a file of up to STEWARD_MAX_UPLOAD_BYTES. Larger: 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("STEWARD_MAX_BODY_BYTES", 2_621_440)
STEWARD_MAX_UPLOAD_BYTES = env_int("STEWARD_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
# Portal lists count at most this many rows (governance.pagination); above it a list says "more than".
STEWARD_LIST_COUNT_CAP = env_int("STEWARD_LIST_COUNT_CAP", 10_000, minimum=1)
# Leases on running work (governance.leases): renewed while the work runs; when a worker is lost the
# lease lapses after this long and the recovery task (every STEWARD_LEASE_RECOVERY_SECONDS) resumes it.
STEWARD_LEASE_SECONDS = env_int("STEWARD_LEASE_SECONDS", 300)
# Work taken over more often than this (something in it kills its worker) is failed with the reason instead.
STEWARD_LEASE_MAX_TAKEOVERS = env_int("STEWARD_LEASE_MAX_TAKEOVERS", 3)

# Celery: embedded default is kombu's filesystem transport under var/ (no server needed).
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redis (and other brokers with a visibility timeout): a message taken by a worker that is killed is
    # delivered again after this many seconds, just after the lease of its work lapsed (governance.leases).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": STEWARD_LEASE_SECONDS + 60}
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "") == "1"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Leases and recovery (docs/architecture.md): a message is acknowledged only after its task ran, and
# given back to the broker when the worker running it is lost; one message at a time per worker process.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE

# The outbox (governance/outbox.py): background work is a row committed with the change; the relay
# (`manage.py outbox_relay`) publishes it, polling this often, retrying a broker that is away with
# backoff up to the maximum, and forgets published rows after the retention.
STEWARD_OUTBOX_POLL_SECONDS = env_float("STEWARD_OUTBOX_POLL_SECONDS", 1)
STEWARD_OUTBOX_RETRY_MAX_SECONDS = env_float("STEWARD_OUTBOX_RETRY_MAX_SECONDS", 60)
STEWARD_OUTBOX_RETAIN_DAYS = env_float("STEWARD_OUTBOX_RETAIN_DAYS", 7)

# Webhooks (governance/services/webhook_targets.py, webhooks.py): targets must be public addresses unless
# allow-listed here (host names, addresses or networks such as 10.1.0.0/16, comma-separated); proxy
# variables (HTTPS_PROXY...) are ignored unless STEWARD_WEBHOOK_TRUST_ENV, because a proxy would reach
# the target by name and undo the address pinning.
STEWARD_WEBHOOK_ALLOWED_HOSTS = env_list("STEWARD_WEBHOOK_ALLOWED_HOSTS")
STEWARD_WEBHOOK_TRUST_ENV = env_bool("STEWARD_WEBHOOK_TRUST_ENV", False)
STEWARD_WEBHOOK_TIMEOUT_SECONDS = env_float("STEWARD_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
STEWARD_WEBHOOK_MAX_ATTEMPTS = env_int("STEWARD_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
STEWARD_WEBHOOK_RETRY_BASE_SECONDS = env_float("STEWARD_WEBHOOK_RETRY_BASE_SECONDS", 30, minimum=1)
STEWARD_WEBHOOK_RETRY_MAX_SECONDS = env_float("STEWARD_WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600, minimum=1)
STEWARD_WEBHOOK_SECRET_OVERLAP_HOURS = env_float("STEWARD_WEBHOOK_SECRET_OVERLAP_HOURS", 24)
STEWARD_WEBHOOK_SECRET_PATH = env_str("STEWARD_WEBHOOK_SECRET_PATH", "steward/webhook-endpoints")

# Integrations (API tokens) and the API's Idempotency-Key records.
STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS = env_int("STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS", 180, minimum=1)
STEWARD_INTEGRATION_MAX_LIFETIME_DAYS = env_int("STEWARD_INTEGRATION_MAX_LIFETIME_DAYS", 366, minimum=1)
STEWARD_INTEGRATION_TOKEN_OVERLAP_HOURS = env_float("STEWARD_INTEGRATION_TOKEN_OVERLAP_HOURS", 24)
STEWARD_IDEMPOTENCY_TTL_HOURS = env_float("STEWARD_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
if STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS > STEWARD_INTEGRATION_MAX_LIFETIME_DAYS:
    raise ImproperlyConfigured("STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS must not exceed "
                               "STEWARD_INTEGRATION_MAX_LIFETIME_DAYS.")

# Attestation (governance/services/attestation.py holds the campaign calendar): days of grace after the
# due date, the reminder's lead, and what an unanswered item brings: a finding, or suspension.
STEWARD_ATTESTATION_SCHEDULE = {
    "grace_days": env_int("STEWARD_ATTESTATION_GRACE_DAYS", 14),
    "remind_days_before_due": env_int("STEWARD_ATTESTATION_REMIND_DAYS", 7),
    "consequence": env_str("STEWARD_ATTESTATION_CONSEQUENCE", "finding"),
}
if STEWARD_ATTESTATION_SCHEDULE["consequence"] not in ("finding", "suspension"):
    raise ImproperlyConfigured("STEWARD_ATTESTATION_CONSEQUENCE must be finding or suspension.")

# Lifecycle timing: certificates are renewed this many days before they expire; rotations are scheduled
# this many days before they fall due. Links in mail start with STEWARD_BASE_URL.
STEWARD_CERT_RENEW_BEFORE_DAYS = env_int("STEWARD_CERT_RENEW_BEFORE_DAYS", 30)
# A certificate Steward issues lives this long unless its credential's rotation policy says otherwise; the one
# a renewal replaced stays valid this many hours (its consumers switch over), then the renewal sweep revokes it.
STEWARD_CERT_LIFETIME_DAYS = env_int("STEWARD_CERT_LIFETIME_DAYS", 47, minimum=1)
STEWARD_CERT_REVOKE_OVERLAP_HOURS = env_int("STEWARD_CERT_REVOKE_OVERLAP_HOURS", 24, minimum=0)
STEWARD_ROTATION_LEAD_DAYS = env_int("STEWARD_ROTATION_LEAD_DAYS", 0)
STEWARD_AUDIT_FULL_VERIFY_SECONDS = env_int("STEWARD_AUDIT_FULL_VERIFY_SECONDS", 24 * 3600, minimum=60)
STEWARD_BASE_URL = env_str("STEWARD_BASE_URL", "")

# The in-app inbox keeps notifications this long; the daily purge (governance.notifications.purge) deletes older ones.
STEWARD_NOTIFICATION_RETENTION_DAYS = env_int("STEWARD_NOTIFICATION_RETENTION_DAYS", 180, minimum=1)

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "steward@localhost")

# Demo accounts' password; demo mode only (seed_demo refuses under STEWARD_ENV=production).
STEWARD_DEMO_PASSWORD = env_str("STEWARD_DEMO_PASSWORD", "steward-demo")
# `make run` (demo mode) starts the AWS (moto) and GitHub/GitLab API stand-ins on free loopback ports.
STEWARD_DEMO_CLOUD = env_bool("STEWARD_DEMO_CLOUD", True)
# Set by `make run` (manage.py run_portal): the sign-in page lists the demo accounts. Never in production.
STEWARD_DEMO_MODE = env_bool("STEWARD_DEMO_MODE", False) and not PRODUCTION

GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False
ANONYMOUS_USER_NAME = None

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "governance.api.schema.StewardAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["governance.api.permissions.StewardPermission"],
    "DEFAULT_PAGINATION_CLASS": "governance.api.pagination.StewardCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["governance.api.parsers.StewardJSONParser"],
    "EXCEPTION_HANDLER": "governance.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": (
        "Governance of automated workflows and the non-human identities they run on. Authenticate with an "
        "integration's bearer token (Authorization: Bearer stw_...) or a signed-in portal session (CSRF on "
        "writes). Every list is cursor-paginated (?cursor=, ?page_size= up to 200) and filtered like the "
        "portal's lists. Errors share one body: {status, code, message, fields, request_id}. "
        "See docs/integrations.md."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "PersonStatusEnum": "governance.choices.PersonStatus",
        "CredentialStatusEnum": "governance.choices.CredentialStatus",
        "WorkflowStatusEnum": "governance.choices.WorkflowStatus",
        "ActiveDisabledEnum": "governance.models.integrations.IntegrationStatus",
        "DeliveryStatusEnum": "governance.models.integrations.DeliveryStatus",
        "CredentialKindEnum": "governance.choices.CredentialKind",
        "WorkflowKindEnum": "governance.choices.WorkflowKind",
        "SecretStoreKindEnum": "governance.choices.SecretStoreKind",
        "ReportKindEnum": "reports.models.ReportKind",
        "ReportJobStatusEnum": "reports.models.ReportJobStatus",
        "ApprovalStatusEnum": "governance.models.approvals.ApprovalStatus",
        "ApprovalActionEnum": "governance.models.approvals.ApprovalAction",
        "KillSwitchStepActionEnum": "governance.models.lifecycle.StepAction",
    },
}


# Database errors are logged without their values (SQL parameters, PostgreSQL's "Key (col)=(value)"):
# the filter sits on the console handler, which every logger reaches, and on the loggers whose
# records also go elsewhere (django.request: the admin mail; celery.app.trace: a worker's own handlers).
_SCRUBBED = {"filters": ["database_values"]}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"database_values": {"()": "governance.log_filters.DatabaseValueFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", **_SCRUBBED}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO", **_SCRUBBED},
        "django.db.backends.schema": _SCRUBBED,
        "django.request": _SCRUBBED,
        "django.security": _SCRUBBED,
        "celery.app.trace": _SCRUBBED,
    },
}

# Governance thresholds (the checks read these; each can be set by environment variable).
STEWARD_THRESHOLDS = {
    "rotation_max_age_days": {
        "service_account": env_int("STEWARD_MAX_AGE_SERVICE_ACCOUNT_DAYS", 90),
        "api_key": env_int("STEWARD_MAX_AGE_API_KEY_DAYS", 90),
        "certificate": env_int("STEWARD_MAX_AGE_CERTIFICATE_DAYS", 397),
        "oauth_client": env_int("STEWARD_MAX_AGE_OAUTH_CLIENT_DAYS", 180),
        "ssh_key": env_int("STEWARD_MAX_AGE_SSH_KEY_DAYS", 180),
        "access_token": env_int("STEWARD_MAX_AGE_ACCESS_TOKEN_DAYS", 30),
        "password": env_int("STEWARD_MAX_AGE_PASSWORD_DAYS", 90),
    },
    "certificate_warning_days": env_int("STEWARD_CERT_WARNING_DAYS", 30),
    "attestation_period_days": env_int("STEWARD_ATTESTATION_PERIOD_DAYS", 180),
    "drill_max_age_days": env_int("STEWARD_DRILL_MAX_AGE_DAYS", 180),
    "third_party_review_days": env_int("STEWARD_THIRD_PARTY_REVIEW_DAYS", 365),
}

# Discovery (docs/discovery.md): the key of the fingerprints of hard-coded secrets (HMAC-SHA256), kept outside the
# database so that a fingerprint cannot be tested against guessed values by whoever reads the database; derived
# from SECRET_KEY outside production. Git history is scanned this many commits deep by default.
STEWARD_DISCOVERY_FINGERPRINT_KEY = env_str("STEWARD_DISCOVERY_FINGERPRINT_KEY", "")
STEWARD_DISCOVERY_HISTORY_DEPTH = env_int("STEWARD_DISCOVERY_HISTORY_DEPTH", 200, minimum=0)
if PRODUCTION and len(STEWARD_DISCOVERY_FINGERPRINT_KEY) < 32:
    raise ImproperlyConfigured("STEWARD_ENV=production refuses to start: STEWARD_DISCOVERY_FINGERPRINT_KEY must be "
                               "a random value of at least 32 characters")
