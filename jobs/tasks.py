"""Celery tasks of the jobs app: take ids, call services."""

from celery import shared_task

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
