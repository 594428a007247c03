"""Celery tasks of the jobs app: take ids, call services."""

from celery import shared_task
from django.conf import settings

from audit.context import current_request_id

from . import services


@shared_task(ignore_result=False, soft_time_limit=30, time_limit=60)
def ping(payload: str = "") -> dict:
    """Round trip through the broker and a worker (readiness checks and tests)."""
    from celery import current_task

    return {
        "pong": payload,
        "worker": current_task.request.hostname,
        "request_id": current_request_id(),
    }


@shared_task(soft_time_limit=60, time_limit=120)
def prune_workers() -> int:
    return services.worker_prune()


@shared_task(
    bind=True,
    soft_time_limit=settings.HEARTH_TRAINING_TIME_LIMIT,
    time_limit=settings.HEARTH_TRAINING_TIME_LIMIT + 600,
)
def run_training(self, job_id: int) -> str:
    from .training import run_training as run

    return run(job_id, self.request.hostname or "worker")


@shared_task(
    bind=True,
    soft_time_limit=settings.HEARTH_TRAINING_TIME_LIMIT,
    time_limit=settings.HEARTH_TRAINING_TIME_LIMIT + 600,
)
def run_model_task(self, job_id: int) -> str:
    """Compression, evaluation and LoRA merge jobs (GPU queue: they load whole models)."""
    from .model_tasks import run_model_task as run

    return run(job_id, self.request.hostname or "worker")


@shared_task(ignore_result=False, soft_time_limit=300, time_limit=360)
def playground_generate(version_id: int, options: dict) -> dict:
    from .playground import generate

    return generate(version_id, options)


@shared_task(ignore_result=False, soft_time_limit=120, time_limit=180)
def playground_detect(version_id: int, text: str) -> dict:
    from .playground import detect

    return detect(version_id, text)


GPU_TASKS = ("training", "compression", "evaluation", "merge")


def task_for_kind(kind: str):
    """The task that runs a job of `kind` (the reaper and redispatch requeue by kind)."""
    return run_training if kind == "training" else run_model_task


@shared_task(soft_time_limit=60, time_limit=120)
def reap() -> dict:
    """Beat, every 10 s: requeue jobs whose worker died; resend queued jobs Redis lost."""
    from .training import reap_lost_attempts, redispatch_stale_queued

    return {"lost": reap_lost_attempts(), "redispatched": redispatch_stale_queued()}
