"""Celery tasks: thin adapters that load by id and call one service. One module per capability.

Celery's autodiscovery imports this package; importing the modules here registers their tasks.
"""

from governance.discovery import tasks as discovery_tasks  # noqa: F401 - discovery keeps its tasks in its package
from governance.tasks import (  # noqa: F401
    approvals,
    attestation,
    audit,
    checks,
    integrations,
    leases,
    lifecycle,
    mail,
    notifications,
)
