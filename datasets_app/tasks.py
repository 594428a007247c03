"""CPU-queue tasks: take a job id, run the processing through the shared job runner."""

from celery import shared_task

from jobs.runner import run_job

from . import processing

# Hours of rows at worst; the runner stores progress and honours cancels long before this.
LIMITS = {"soft_time_limit": 6 * 3600, "time_limit": 6 * 3600 + 300, "acks_late": False}


@shared_task(**LIMITS)
def run_desensitize(job_id: int) -> str:
    return run_job(job_id, processing.run_desensitize)


@shared_task(**LIMITS)
def run_augment(job_id: int) -> str:
    return run_job(job_id, processing.run_augment)


@shared_task(soft_time_limit=600, time_limit=900)
def purge_deleted() -> int:
    from django.conf import settings

    from .services import dataset_purge_expired

    return dataset_purge_expired(retention_days=settings.HEARTH_DATASET_RETENTION_DAYS)
