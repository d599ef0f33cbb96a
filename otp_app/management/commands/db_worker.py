"""django-tasks-db's worker (the same options), which also runs again the security emails that a
worker left running when it died: django-tasks-db leaves such a task RUNNING for ever. It checks
when it starts, then every quarter of TWOFA_EMAIL_STALE_SECONDS (not with --batch).
"""

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connections
from django_tasks_db.management.commands import db_worker

from otp_app import notifications

logger = logging.getLogger("otp_app.notifications")


class Command(db_worker.Command):
    help = db_worker.Command.help + ", running again the security emails of workers that died"

    def handle(self, *args, batch: bool, **options):
        _requeue_stale()
        if not batch:
            period = max(1.0, settings.TWOFA_EMAIL_STALE_SECONDS / 4)
            threading.Thread(target=_requeue_stale_every, args=(period,), daemon=True, name="requeue-stale").start()
        super().handle(*args, batch=batch, **options)


def _requeue_stale_every(period: float) -> None:
    while True:
        time.sleep(period)
        _requeue_stale()
        connections.close_all()  # this thread's own: none is kept open between checks


def _requeue_stale() -> None:
    try:
        requeued = notifications.requeue_stale()
    except DatabaseError:
        logger.exception("could not check for security emails left running by a worker that died")
        return
    if requeued:
        logger.warning("%d security email(s) left running by a worker that died will be sent again", requeued)
