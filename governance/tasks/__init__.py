"""Celery tasks: thin adapters that load by id and call one service. One module per capability.

Celery's autodiscovery imports this package; importing the modules here registers their tasks.
"""

from governance.tasks import approvals, attestation, audit, checks, integrations, leases, lifecycle, mail  # noqa: F401
