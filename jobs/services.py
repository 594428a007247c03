"""Writes for the jobs app: worker heartbeats and the base-model registry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record

from .engine.model_info import ModelFolderError, inspect_model_dir
from .models import BaseModel, Worker

DEMO_MODEL_NAME = "hearth-demo-tiny-qwen2"


def worker_heartbeat(
    *,
    hostname: str,
    host: str,
    pid: int,
    queues: list[str],
    gpus: list[dict],
    concurrency: int,
    started: bool = False,
) -> Worker:
    now = timezone.now()
    defaults = {
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
