"""The Celery app: two queues, JSON only, time limits, routing by task.

- `gpu`: training and compression (one job per leased GPU set, prefetch 1).
- `cpu`: data processing (desensitization, augmentation) and housekeeping.
- `playground`: interactive generation, on a worker of its own that keeps a small model cache,
  so a prompt never waits behind an hour-long training job; requests queue, one at a time.
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("hearth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("gpu"), Queue("cpu"), Queue("playground"))
app.conf.task_routes = {
    "jobs.tasks.run_training": {"queue": "gpu"},
    "jobs.tasks.run_model_task": {"queue": "gpu"},
    "jobs.tasks.playground_*": {"queue": "playground"},
    "jobs.tasks.*": {"queue": "cpu"},
    "datasets_app.tasks.*": {"queue": "cpu"},
    "audit.tasks.*": {"queue": "cpu"},
}
app.conf.beat_schedule = {
    "prune-stopped-workers": {"task": "jobs.tasks.prune_workers", "schedule": 3600.0},
    "reap-lost-jobs": {"task": "jobs.tasks.reap", "schedule": 10.0},
    "purge-deleted-datasets": {"task": "datasets_app.tasks.purge_deleted", "schedule": 3600.0},
    "archive-expired-audit-events": {
        "task": "audit.tasks.archive_expired",
        "schedule": 24 * 3600.0,
    },
}
app.autodiscover_tasks()
