"""Settings of the Celery worker that tests/live_broker.py starts: the project's, plus what a test sets.

The test process changes these through pytest-django's settings fixture; a worker subprocess
cannot see that, so they are set here (the webhook receiver on loopback, mail as files to count,
media under the test's own folder).
"""

import os
from pathlib import Path

from portal.settings import *  # noqa: F403 - the project's settings, unchanged but for the lines below

STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["STEWARD_TEST_MAIL_DIR"]
MEDIA_ROOT = Path(os.environ["STEWARD_TEST_MEDIA_ROOT"])
