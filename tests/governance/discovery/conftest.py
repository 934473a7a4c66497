"""Discovery tests use the lifecycle tests' real servers (OpenBao dev server, private PostgreSQL, Redis)."""

from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    TOKEN_ENV,
    eager_celery,
    fresh_connectors,
    kv_put,
    kv_store,
    openbao,
    pg_admin,
    pg_cluster,
    pki_store,
    redis_admin,
    unique,
)
