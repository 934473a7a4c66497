"""Services enqueue work by task name (governance.task_names): every name must be a registered task."""

import pytest

from governance import task_names
from portal.celery import app
from reports.services import RUN_REPORT_JOB_TASK

NAMES = sorted(value for key, value in vars(task_names).items() if key.isupper()) + [RUN_REPORT_JOB_TASK]


@pytest.mark.embedded
@pytest.mark.parametrize("name", NAMES)
def test_each_task_name_is_registered_at_start_up(name):
    assert name in app.tasks, f"{name} is enqueued by a service but no task registers under it"
