"""Running a claimed job inside a Celery task: progress, cancellation and the final status.

Work functions receive the job and a `progress(fraction, message)` callback; the callback
raises JobCancelled once someone asked to cancel, so work stops at the next progress point.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError

from audit.services import record

from .models import Job
from .services import job_cancelled, job_claim, job_fail, job_progress, job_succeed

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    pass


class UserError(Exception):
    """A failure caused by the job's input or parameters (shown to the user as is)."""


Progress = Callable[[float, str], None]


def throttled_progress(job_id: int, every_seconds: float = 0.5) -> Progress:
    last = 0.0

    def progress(fraction: float, message: str = "") -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < every_seconds and fraction < 1.0:
            return
        last = now
        if job_progress(job_id=job_id, progress=fraction, message=message) == Job.Status.CANCELLING:
            raise JobCancelled

    return progress


def run_job(job_id: int, work: Callable[[Job, Progress], dict]) -> str:
    """Claim the job, run `work`, and record how it ended. Returns the final status.

    `work` returns the fields to store on success (e.g. result_dataset_version, report).
    """
    job = job_claim(job_id=job_id)
    if job is None:
        return "skipped"  # taken by another worker, or cancelled while queued
    detail = ""
    try:
        fields = work(job, throttled_progress(job.pk))
    except JobCancelled:
        job_cancelled(job_id=job.pk)
    except (UserError, ValidationError) as exc:
        detail = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        job_fail(job_id=job.pk, error=detail)
    except SoftTimeLimitExceeded:
        detail = "The job ran past its time limit."
        job_fail(job_id=job.pk, error=detail)
    except Exception as exc:
        logger.exception("job %s failed", job.pk)
        detail = f"{exc.__class__.__name__}: {exc}"
        job_fail(job_id=job.pk, error=detail)
    else:
        job_succeed(job_id=job.pk, **fields)  # ends cancelled if a cancel came in meanwhile
    job.refresh_from_db()
    record(
        action=f"jobs.job.{job.status}",
        obj=job,
        actor_username="system",
        outcome="error" if job.status == Job.Status.FAILED else "allowed",
        details={"error": detail} if detail else None,
    )
    return job.status
