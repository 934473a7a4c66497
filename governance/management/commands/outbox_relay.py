"""`manage.py outbox_relay`: publish the outbox's unpublished messages to the broker, in its own process.

Run one (or more: concurrent relays take disjoint rows) next to the Celery workers; `run_portal`
starts one. --once publishes what is due now and exits (a cron job, a check after an outage).
"""

import signal

from celery import current_app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from governance.outbox import BATCH_SIZE, outbox_backlog, outbox_relay, outbox_relay_once


class Command(BaseCommand):
    help = "Publish unpublished outbox messages to the Celery broker; retry with backoff while it is away."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Publish what is due now, then exit.")
        parser.add_argument("--poll", type=float, default=None, metavar="SECONDS",
                            help="Seconds between polls when nothing is due (default STEWARD_OUTBOX_POLL_SECONDS).")

    def handle(self, *args, once=False, poll=None, **options):
        poll = float(poll if poll is not None else settings.STEWARD_OUTBOX_POLL_SECONDS)
        if poll <= 0:
            raise CommandError("--poll must be a positive number of seconds.")
        current_app.loader.import_default_modules()  # register every task, so rows publish as task objects
        if once:
            totals = {"claimed": 0, "published": 0, "failed": 0}
            while True:
                counts = outbox_relay_once()
                for key in totals:
                    totals[key] += counts[key]
                if counts["claimed"] < BATCH_SIZE or counts["failed"]:
                    break
            backlog = outbox_backlog()
            self.stdout.write(f"Published {totals['published']}, failed {totals['failed']}; "
                              f"{backlog['unpublished']} unpublished message(s) left.")
            if totals["failed"]:
                raise CommandError(f"The broker refused {totals['failed']} message(s): {backlog['last_error']}")
            return
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"Outbox relay publishing every {poll:g} s to {current_app.conf.broker_url.split('://')[0]}"
                          f"://; Ctrl-C stops it.")
        outbox_relay(poll_seconds=poll, should_stop=lambda: stopping)
        self.stdout.write("Outbox relay stopped.")
