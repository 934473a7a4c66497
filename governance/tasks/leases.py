"""Celery adapter of the lease recovery: the periodic task that looks after work whose worker was lost.

Beat runs it every minute (portal/celery.py). It may run twice at once, or alongside a redelivered
message: every recovered unit is claimed with compare-and-set first, so each is done once.
"""

from celery import shared_task

from governance.leases import leases_recover

RECOVER_TASK_NAME = "governance.leases.recover"


@shared_task(name=RECOVER_TASK_NAME)
def leases_recover_task() -> dict:
    """Resume, or fail with the reason, every running unit of work whose lease lapsed."""
    return leases_recover()
