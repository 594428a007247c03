"""Writes for the jobs app: worker heartbeats and the base-model registry."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record

from .engine.model_info import ModelFolderError, inspect_model_dir
from .models import BaseModel, Job, JobTransition, Worker

DEMO_MODEL_NAME = "hearth-demo-tiny-qwen2"


def worker_heartbeat(
    *,
    hostname: str,
    host: str,
    pid: int,
    queues: list[str],
    gpus: list[dict],
    concurrency: int,
    capabilities: dict | None = None,
    started: bool = False,
) -> Worker:
    now = timezone.now()
    defaults = {
        "capabilities": capabilities or {},
        "host": host,
        "pid": pid,
        "queues": queues,
        "gpus": gpus,
        "concurrency": concurrency,
        "last_heartbeat": now,
        "stopped_at": None,
    }
    if started:
        defaults["started_at"] = now
    worker, _ = Worker.objects.update_or_create(
        hostname=hostname, defaults=defaults, create_defaults={**defaults, "started_at": now}
    )
    return worker


def worker_stopped(*, hostname: str) -> None:
    Worker.objects.filter(hostname=hostname).update(stopped_at=timezone.now())


def worker_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget workers that stopped or went silent more than a day ago."""
    deleted, _ = Worker.objects.filter(last_heartbeat__lt=timezone.now() - older_than).delete()
    return deleted


def base_model_register_local(
    *,
    name: str,
    path: Path,
    actor=None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    is_demo: bool = False,
) -> BaseModel:
    """Register a model folder on the server's disk after validating it."""
    if BaseModel.objects.filter(name=name).exists():
        raise ValidationError({"name": "A base model with this name already exists."})
    try:
        info = inspect_model_dir(Path(path), allow_pickle=allow_pickle)
    except ModelFolderError as exc:
        raise ValidationError({"location": str(exc)}) from exc
    with transaction.atomic():
        model = BaseModel.objects.create(
            name=name,
            source=BaseModel.Source.LOCAL,
            location=str(Path(path).resolve()),
            trust_remote_code=trust_remote_code,
            is_demo=is_demo,
            owner=actor if actor is not None and actor.is_authenticated else None,
            **info,
        )
        record(
            action="jobs.basemodel.register",
            actor=actor,
            obj=model,
            actor_username="" if actor else "system",
            details=info,
        )
    return model


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def base_model_register(
    *,
    actor,
    name: str,
    source: str,
    location: str,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> BaseModel:
    """Register a base model: a local folder (validated now) or a hub id (fetched by the worker
    where the site has internet). The risky switches are recorded in the audit trail."""
    if source == BaseModel.Source.LOCAL:
        return base_model_register_local(
            name=name,
            path=Path(location),
            actor=actor,
            allow_pickle=allow_pickle,
            trust_remote_code=trust_remote_code,
        )
    if not HUB_ID.match(location):
        raise ValidationError({"location": "A hub id looks like organisation/model-name."})
    if BaseModel.objects.filter(name=name).exists():
        raise ValidationError({"name": "A base model with this name already exists."})
    with transaction.atomic():
        model = BaseModel.objects.create(
            name=name,
            source=source,
            location=location,
            trust_remote_code=trust_remote_code,
            owner=actor,
        )
        record(
            action="jobs.basemodel.register",
            actor=actor,
            obj=model,
            details={"source": source, "trust_remote_code": trust_remote_code},
        )
    return model


def demo_model_ensure() -> BaseModel:
    """Generate the tiny demo model on first start and register it (idempotent)."""
    from .engine.demo_model import build_demo_model, is_current_demo

    folder = Path(settings.HEARTH_MODELS_DIR) / DEMO_MODEL_NAME
    if not is_current_demo(folder):
        build_demo_model(folder)
    existing = BaseModel.objects.filter(name=DEMO_MODEL_NAME).first()
    if existing is not None:
        return existing
    return base_model_register_local(name=DEMO_MODEL_NAME, path=folder, is_demo=True)


# -- jobs ---------------------------------------------------------------------------------------
ACTIVE = {Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.RETRYING, Job.Status.CANCELLING}


def job_transition(
    *, job_id: int, to: str, allowed_from: set[str], message: str = "", **fields
) -> Job | None:
    """Move a job to `to` if it is in one of `allowed_from`; record the transition.

    Returns the job, or None when its status did not allow the move (e.g. cancelled meanwhile).
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status not in allowed_from:
            return None
        previous = job.status
        job.status = to
        for name, value in fields.items():
            setattr(job, name, value)
        if message:
            job.message = message[:500]
        job.save(update_fields=["status", "message", *fields])
        JobTransition.objects.create(
            job=job, from_status=previous, to_status=to, message=message[:500]
        )
    return job


def job_submit(*, kind: str, owner, params: dict, dataset_version=None, task, **fields) -> Job:
    """Create a queued job and enqueue `task(job_id)` once the transaction commits."""
    from audit.context import current_request_id

    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            owner=owner,
            params=params,
            dataset_version=dataset_version,
            request_id=current_request_id(),
            **fields,
        )
        JobTransition.objects.create(job=job, from_status="", to_status=Job.Status.QUEUED)
        record(action="jobs.job.submit", actor=owner, obj=job, details={"kind": kind})
        transaction.on_commit(lambda: task.delay(job.pk))
    return job


def job_claim(*, job_id: int) -> Job | None:
    """Atomically take a queued job; None if another worker took it or it was cancelled."""
    return job_transition(
        job_id=job_id,
        to=Job.Status.RUNNING,
        allowed_from={Job.Status.QUEUED},
        started_at=timezone.now(),
    )


def job_progress(*, job_id: int, progress: float, message: str = "") -> str:
    """Store progress; returns the job's current status so the runner can notice a cancel."""
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
        progress=max(0.0, min(1.0, progress)), message=message[:500]
    )
    return Job.objects.values_list("status", flat=True).get(pk=job_id)


def job_succeed(*, job_id: int, message: str = "", **fields) -> Job | None:
    """Running → succeeded. A job being cancelled ends cancelled, never succeeded."""
    done = job_transition(
        job_id=job_id,
        to=Job.Status.SUCCEEDED,
        allowed_from={Job.Status.RUNNING},
        message=message,
        progress=1.0,
        finished_at=timezone.now(),
        **fields,
    )
    if done is None:
        job_cancelled(job_id=job_id)
    return done


def job_fail(*, job_id: int, error: str) -> Job | None:
    return job_transition(
        job_id=job_id,
        to=Job.Status.FAILED,
        allowed_from={Job.Status.RUNNING, Job.Status.QUEUED},
        message="failed",
        error=error[:10000],
        finished_at=timezone.now(),
    ) or job_cancelled(job_id=job_id)


def job_cancelled(*, job_id: int) -> Job | None:
    return job_transition(
        job_id=job_id,
        to=Job.Status.CANCELLED,
        allowed_from={Job.Status.CANCELLING, Job.Status.QUEUED},
        message="cancelled",
        finished_at=timezone.now(),
    )


def job_cancel(*, job: Job, actor) -> Job:
    """Queued jobs end at once; running ones go to `cancelling` and their runner stops."""
    with transaction.atomic():
        done = job_transition(
            job_id=job.pk,
            to=Job.Status.CANCELLED,
            allowed_from={Job.Status.QUEUED},
            message=f"cancelled by {actor.get_username()}",
            finished_at=timezone.now(),
        ) or job_transition(
            job_id=job.pk,
            to=Job.Status.CANCELLING,
            allowed_from={Job.Status.RUNNING, Job.Status.RETRYING},
            message=f"cancel requested by {actor.get_username()}",
        )
        if done is None:
            raise ValidationError(
                {"status": f"A {job.get_status_display()} job cannot be cancelled."}
            )
        record(action="jobs.job.cancel", actor=actor, obj=done)
    return done
