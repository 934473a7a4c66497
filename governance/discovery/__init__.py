"""Discovery: find the automation, the identities and the secrets nobody declared, and reconcile them.

This package owns the discovery capability: the read-only sources (sources/: OpenBao/Vault, PostgreSQL
login roles, Redis ACL users, git repositories and directories, scanner reports), the parsers of CI/CD
and infrastructure definitions (parsers/), the keyed fingerprints of hard-coded secrets (fingerprint.py),
the run service that records what a source saw (services.py), the set-based reconciliation against the
inventory (reconcile.py), the review queue's services (review.py), the checks that turn undeclared and
leaked things into findings (checks.py), the reads (selectors.py) and the Celery adapters (tasks.py).
Its models are governance.models.discovery. No secret value is ever stored, logged or audited: a source
reads metadata only, and a hard-coded secret is kept as an HMAC fingerprint and its location.
"""
