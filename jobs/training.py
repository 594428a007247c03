"""Training jobs: validated submission in the web process, supervised runs on a GPU-queue worker.

The worker claims the job, opens an attempt with a lease (renewed every few seconds; the reaper
requeues jobs whose lease expired), leases GPUs, decrypts the data into a private work folder,
spawns the Django-free engine (`python -m jobs.engine.train`, or `torchrun` for several GPUs),
tails its event file into metric rows and its output into log rows, and stores the result as an
encrypted model version. Checkpoints and the event file live in the job's folder under the data
directory, so a later attempt (after a cancel-and-retry or a dead worker) resumes from them.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections, transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import record
from datasets_app import storage
from datasets_app.crypto import decrypt_to_path, keystore_from_settings

from .engine.spec import SpecError, TrainSpec
from .models import BaseModel, Job, JobAttempt, JobLog, JobMetric, ModelVersion, Worker
from .services import job_cancelled, job_fail, job_submit, job_succeed, job_transition

logger = logging.getLogger(__name__)

# What a user may set; paths are the worker's business.
USER_FIELDS = frozenset(
    f
    for f in TrainSpec.__dataclass_fields__
    if f
    not in {
        "model_dir",
        "data_path",
        "output_dir",
        "checkpoint_dir",
        "events_path",
        "resume",
        "data_sha256",
        "trust_remote_code",
    }
)
PRESETS: dict[str, dict[str, Any]] = {
    "quick_lora": {
        "title": "Quick LoRA",
        "method": "lora",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.05},
        "num_train_epochs": 1,
        "learning_rate": 2e-4,
        "per_device_train_batch_size": 4,
        "max_seq_length": 1024,
        "packing": True,
        "logging_steps": 5,
        "save_steps": 100,
    },
    "full_finetune": {
        "title": "Full fine-tune",
        "method": "full",
        "num_train_epochs": 3,
        "learning_rate": 2e-5,
        "per_device_train_batch_size": 2,
        "warmup_ratio": 0.03,
        "weight_decay": 0.01,
        "lr_scheduler_type": "cosine",
        "save_steps": 200,
    },
    "low_memory": {
        "title": "Low memory",
        "method": "lora",
        "lora": {"r": 8, "alpha": 16},
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 8,
        "gradient_checkpointing": True,
        "max_seq_length": 1024,
        "packing": True,
    },
}


# -- submission (web process) ---------------------------------------------------------------------
def cluster_gpus() -> int:
    """The most GPUs any live worker on the gpu queue has (0 on a CPU-only cluster)."""
    counts = [len(w.gpus) for w in Worker.objects.live() if "gpu" in w.queues]
    return max(counts, default=0)


def build_spec(*, params: dict[str, Any], base_model: BaseModel, dataset_version) -> TrainSpec:
    """Merge preset + user knobs into a spec and validate it as far as the web side can."""
    params = dict(params)
    preset = params.pop("preset", "") or ""
    if preset and preset not in PRESETS:
        raise ValidationError({"preset": f"Unknown preset; choose one of {sorted(PRESETS)}."})
    unknown = sorted(set(params) - USER_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a training setting." for name in unknown})
    knobs = {k: v for k, v in PRESETS.get(preset, {}).items() if k != "title"} | params
    try:
        spec = TrainSpec.from_dict(
            {
                **knobs,
                "model_dir": base_model.location,
                "data_path": "data.jsonl",
                "output_dir": "output",
                "checkpoint_dir": "checkpoints",
                "events_path": "events.jsonl",
                "trust_remote_code": base_model.trust_remote_code,
                "data_sha256": dataset_version.sha256,
            }
        )
        spec.validate(check_environment=False)
    except SpecError as exc:
        raise ValidationError({field or "spec": message for field, message in exc.errors}) from exc
    errors = _cluster_errors(spec) | _data_errors(spec, dataset_version)
    if errors:
        raise ValidationError(errors)
    return spec


def _cluster_errors(spec: TrainSpec) -> dict[str, str]:
    gpus = cluster_gpus()
    errors = {}
    if gpus == 0:
        if spec.precision in {"fp16", "bf16"}:
            errors["precision"] = f"{spec.precision} needs a GPU; no live worker has one."
        if spec.method == "qlora":
            errors["method"] = "QLoRA needs a GPU with bitsandbytes; no live worker has a GPU."
        if spec.deepspeed_stage:
            errors["deepspeed_stage"] = "DeepSpeed needs GPUs; no live worker has one."
        if spec.gpus_per_node > 1:
            errors["gpus_per_node"] = "No live worker has a GPU."
    elif spec.gpus_per_node > gpus:
        errors["gpus_per_node"] = f"The largest live worker has {gpus} GPUs."
    if spec.nodes > 1:
        errors["nodes"] = "Multi-node training is not available yet; use one node."
    return errors


def _data_errors(spec: TrainSpec, dataset_version) -> dict[str, str]:
    columns = set(dataset_version.columns)
    missing = sorted(c for c in spec.columns.values() if c not in columns)
    if missing:
        return {"columns": f"The dataset has no column {', '.join(missing)}."}
    shape = dataset_version.schema.get("shape", "table")
    if spec.format == "auto" and shape == "table" and not spec.columns:
        return {"format": "No instruction/chat/text columns recognised: map the columns."}
    needs = {"alpaca": "alpaca", "chat_template": "chat", "prompt_completion": "prompt_completion"}
    if spec.format in needs and not spec.columns and shape != needs[spec.format]:
        return {"format": f"The dataset looks like {shape}, not {spec.format}: map the columns."}
    return {}


def training_submit(*, owner, base_model: BaseModel, dataset_version, params: dict) -> Job:
    spec = build_spec(params=params, base_model=base_model, dataset_version=dataset_version)
    knobs = {k: v for k, v in spec.to_dict().items() if k in USER_FIELDS}
    from .tasks import run_training

    return job_submit(
        kind=Job.Kind.TRAINING,
        owner=owner,
        params=knobs,
        dataset_version=dataset_version,
        base_model=base_model,
        task=run_training,
    )


def training_retry(*, job: Job, actor) -> Job:
    """Failed or cancelled → queued again; the next attempt resumes from the last checkpoint."""
    from .tasks import run_training

    with transaction.atomic():
        done = job_transition(
            job_id=job.pk,
            to=Job.Status.QUEUED,
            allowed_from={Job.Status.FAILED, Job.Status.CANCELLED},
            message=f"retry requested by {actor.get_username()}",
            error="",
            finished_at=None,
        )
        if done is None:
            raise ValidationError(
                {"status": f"A {job.get_status_display()} job cannot be retried."}
            )
        record(action="jobs.job.retry", actor=actor, obj=done)
        transaction.on_commit(lambda: run_training.delay(job.pk))
    return done


# -- the worker side ------------------------------------------------------------------------------
def job_dir(job: Job) -> Path:
    """The job's checkpoints and event file, kept across attempts. Named by id *and* submit
    time: ids can repeat after a database reset, and a new job must never resume another's."""
    folder = Path(settings.DATA_DIR) / "jobs" / f"{job.pk}-{job.created_at:%Y%m%d%H%M%S%f}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def lease_seconds() -> int:
    return settings.HEARTH_JOB_LEASE_SECONDS


class GpuLease:
    """Exclusive use of N of this host's GPUs, through one lock file per GPU (flock): two jobs of
    one worker, or of two workers on the host, never share a GPU. Locks die with the process."""

    def __init__(self, wanted: int):
        self.wanted = wanted
        self.indices: list[int] = []
        self._files: list = []

    def __enter__(self) -> GpuLease:
        if self.wanted == 0:
            return self
        from .gpus import detect_gpus

        folder = Path(settings.DATA_DIR) / "run" / "gpu-locks"
        folder.mkdir(parents=True, exist_ok=True)
        for gpu in detect_gpus():
            handle = open(folder / f"gpu-{gpu['index']}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._files.append(handle)
            self.indices.append(gpu["index"])
            if len(self.indices) == self.wanted:
                return self
        self.__exit__(None, None, None)
        raise GpusBusy(f"{self.wanted} free GPUs are not available on this worker")

    def __exit__(self, *exc) -> None:
        for handle in self._files:
            handle.close()
        self._files, self.indices = [], []


class GpusBusy(Exception):
    pass


def _die_with_parent() -> None:
    # If the worker process dies (even by SIGKILL) the engine gets SIGKILL too: no orphan keeps
    # a GPU busy while the reaper hands the job to another worker.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()


def engine_command(spec_path: Path, gpus: int) -> list[str]:
    if gpus > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={gpus}",
            "-m",
            "jobs.engine.train",
            str(spec_path),
        ]
    return [sys.executable, "-m", "jobs.engine.train", str(spec_path)]


class Supervisor:
    """Runs one attempt: the engine process, its lease, log and event pumps, and cancel."""

    def __init__(
        self,
        job: Job,
        attempt: JobAttempt,
        spec: Any,
        spec_path: Path,
        gpus: list[int],
        *,
        command: list[str] | None = None,
    ):
        self.job, self.attempt, self.spec = job, attempt, spec
        self.spec_path, self.gpus = spec_path, gpus
        self.command = command or engine_command(spec_path, len(gpus))
        self.cancel_requested = False
        self.process: subprocess.Popen | None = None
        self._events_offset = 0
        self._log_seq = JobLog.objects.filter(job=job).aggregate(m=Max("seq"))["m"] or 0
        self._log_lock = threading.Lock()
        self._pending_logs: list[JobLog] = []
        self.last_error = ""
        self.total_steps: int | None = None

    def run(self) -> int:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, self.gpus)) if self.gpus else ""
        self.process = subprocess.Popen(
            self.command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        JobAttempt.objects.filter(pk=self.attempt.pk).update(pid=self.process.pid)
        reader = threading.Thread(target=self._read_output, daemon=True)
        reader.start()
        next_lease = 0.0
        terminate_deadline = None
        while self.process.poll() is None:
            now = time.monotonic()
            if now >= next_lease:
                self._renew_lease()
                next_lease = now + max(1.0, lease_seconds() / 3)
            self._pump_events()
            self._flush_logs()
            if self.cancel_requested and terminate_deadline is None:
                os.killpg(self.process.pid, signal.SIGTERM)  # the engine stops at the next step
                terminate_deadline = now + settings.HEARTH_CANCEL_GRACE_SECONDS
            if terminate_deadline is not None and now > terminate_deadline:
                os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers (torchrun ranks)
        reader.join(timeout=10)
        self._pump_events()
        self._flush_logs()
        return self.process.returncode

    def _renew_lease(self) -> None:
        close_old_connections()
        JobAttempt.objects.filter(pk=self.attempt.pk).update(
            lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
        )
        status = Job.objects.values_list("status", flat=True).get(pk=self.job.pk)
        if status == Job.Status.CANCELLING:
            self.cancel_requested = True

    def _read_output(self) -> None:
        assert self.process and self.process.stdout
        for raw in self.process.stdout:
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._log_lock:
                self._log_seq += 1
                self._pending_logs.append(
                    JobLog(job_id=self.job.pk, seq=self._log_seq, text=text[:10000])
                )

    def _flush_logs(self) -> None:
        with self._log_lock:
            pending, self._pending_logs = self._pending_logs, []
        if pending:
            JobLog.objects.bulk_create(pending, ignore_conflicts=True)

    def _pump_events(self) -> None:
        path = Path(self.spec.events_path)
        if not path.exists():
            return
        with open(path, "rb") as handle:
            handle.seek(self._events_offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # only whole lines
        self._events_offset += end
        for line in chunk[:end].splitlines():
            with contextlib.suppress(ValueError):
                self.handle_event(json.loads(line))

    def handle_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "start":
            self.total_steps = event.get("max_steps") or event.get("total_steps")
        if kind in {"step", "eval"}:
            data = {k: v for k, v in event.items() if k not in {"seq", "time", "type", "step"}}
            step = int(event.get("step") or 0)
            JobMetric.objects.update_or_create(
                job_id=self.job.pk,
                kind=kind,
                step=step,
                defaults={"seq": event.get("seq", 0), "data": data},
            )
            total = event.get("max_steps") or self.total_steps
            if kind == "step" and total:
                Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING).update(
                    progress=min(step / total, 1.0), message=f"step {step} of {total}"
                )
        elif kind == "progress":
            Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING).update(
                progress=float(event.get("fraction") or 0.0),
                message=str(event.get("message", ""))[:500],
            )
        elif kind == "checkpoint":
            Job.objects.filter(pk=self.job.pk).update(
                message=f"checkpoint at step {event.get('step')}"
            )
        elif kind == "error":
            self.last_error = str(event.get("message", ""))[:5000]


def _open_attempt(job: Job, hostname: str) -> JobAttempt:
    number = (job.attempts.aggregate(n=Max("number"))["n"] or 0) + 1
    return JobAttempt.objects.create(
        job=job,
        number=number,
        worker=hostname,
        lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds()),
    )


def _close_attempt(attempt: JobAttempt, outcome: str, exit_code: int | None) -> None:
    JobAttempt.objects.filter(pk=attempt.pk).update(
        outcome=outcome, exit_code=exit_code, ended_at=timezone.now()
    )


# What a job kind plugs into `run_attempt`: the attempt's spec and engine command, written into
# the private work folder, and how a successful result is stored (-> message, report).
Prepare = Callable[[Job, JobAttempt, "GpuLease", Path, Path], tuple[Any, Path, list[str] | None]]
Store = Callable[[Job, Path, Any], tuple[str, dict[str, Any]]]


def run_attempt(
    job_id: int, hostname: str, *, gpus_wanted: Callable[[Job], int], prepare: Prepare, store: Store
) -> str:
    """One attempt of a GPU-queue job (training, compression, evaluation, merge): claim, lease,
    GPUs, private work folder, supervised engine, final status. Returns the job's status."""
    job = job_transition(
        job_id=job_id,
        to=Job.Status.RUNNING,
        allowed_from={Job.Status.QUEUED, Job.Status.RETRYING},
        started_at=timezone.now(),
        message="starting",
    )
    if job is None:
        return "skipped"
    attempt = _open_attempt(job, hostname)
    folder = job_dir(job)
    exit_code: int | None = None
    try:
        with GpuLease(gpus_wanted(job)) as lease, storage.private_workdir(f"job-{job.pk}") as work:
            Job.objects.filter(pk=job.pk).update(gpus=lease.indices)
            JobAttempt.objects.filter(pk=attempt.pk).update(gpus=lease.indices)
            spec, spec_path, command = prepare(job, attempt, lease, work, folder)
            supervisor = Supervisor(job, attempt, spec, spec_path, lease.indices, command=command)
            exit_code = supervisor.run()
            if exit_code == 0:
                message, report = store(job, work, spec)
                _close_attempt(attempt, JobAttempt.Outcome.SUCCEEDED, exit_code)
                job_succeed(job_id=job.pk, message=message, report=report)
            elif supervisor.cancel_requested:
                _close_attempt(attempt, JobAttempt.Outcome.CANCELLED, exit_code)
                job_cancelled(job_id=job.pk)
            else:
                _close_attempt(attempt, JobAttempt.Outcome.FAILED, exit_code)
                Job.objects.filter(pk=job.pk).update(user_failures=job.user_failures + 1)
                job_fail(
                    job_id=job.pk,
                    error=supervisor.last_error
                    or f"The {job.kind} process exited with code {exit_code}.",
                )
    except GpusBusy as exc:
        # Not the user's fault: give the job back to the queue for another worker.
        _close_attempt(attempt, JobAttempt.Outcome.LOST, None)
        _requeue(job.pk, str(exc), delay_seconds=30)
    except Exception as exc:
        logger.exception("%s job %s failed", job.kind, job.pk)
        _close_attempt(attempt, JobAttempt.Outcome.FAILED, exit_code)
        job_fail(job_id=job.pk, error=f"{exc.__class__.__name__}: {exc}")
    job.refresh_from_db()
    if job.is_final:
        record(
            action=f"jobs.job.{job.status}",
            obj=job,
            actor_username="system",
            outcome="error" if job.status == Job.Status.FAILED else "allowed",
        )
    if job.status == Job.Status.SUCCEEDED:
        shutil.rmtree(folder, ignore_errors=True)  # metrics and logs are in the database now
    return job.status


def run_training(job_id: int, hostname: str) -> str:
    """The task body. Returns the job's status when the attempt ends."""
    return run_attempt(
        job_id,
        hostname,
        gpus_wanted=lambda job: int(job.params.get("gpus_per_node", 1)) if _has_gpus() else 0,
        prepare=_prepare_training,
        store=_store_training,
    )


def _prepare_training(job: Job, attempt: JobAttempt, lease: GpuLease, work: Path, folder: Path):
    data_path = work / "data.jsonl"
    decrypt_to_path(
        storage.path_for(job.dataset_version.storage_key), data_path, keystore_from_settings()
    )
    spec = TrainSpec.from_dict(
        {
            **job.params,
            "model_dir": job.base_model.location,
            "data_path": str(data_path),
            "output_dir": str(work / "output"),
            "checkpoint_dir": str(folder / "checkpoints"),
            "events_path": str(folder / "events.jsonl"),
            "resume": True,
            "trust_remote_code": job.base_model.trust_remote_code,
            "data_sha256": job.dataset_version.sha256,
            "gpus_per_node": max(len(lease.indices), 1),
            "precision": job.params.get("precision", "auto") if lease.indices else "fp32",
        }
    )
    spec_path = work / "spec.json"
    spec.save(spec_path)
    return spec, spec_path, None  # None: engine_command (torchrun for several GPUs)


def _store_training(job: Job, work: Path, spec: TrainSpec) -> tuple[str, dict[str, Any]]:
    version = store_model(job, Path(spec.output_dir))
    return "model stored", {"model_version": version.pk}


def _has_gpus() -> bool:
    from .gpus import detect_gpus

    return bool(detect_gpus())


def store_model(job: Job, output: Path, **fields: Any) -> ModelVersion:
    """Encrypt every file of the engine's output folder into the store; register the version.
    `fields` override what a training job implies (name, method, origin, parent, card, …)."""
    import hashlib

    adapter_config = output / "adapter_config.json"
    if adapter_config.exists():
        # The engine records the worker's absolute model path; store the registry name instead.
        config = json.loads(adapter_config.read_text())
        config["base_model_name_or_path"] = job.base_model.name
        adapter_config.write_text(json.dumps(config, indent=2))
    files = []
    for path in sorted(p for p in output.rglob("*") if p.is_file()):
        relative = path.relative_to(output).as_posix()
        key = storage.new_storage_key(f"models/job-{job.pk}")
        digest = hashlib.sha256()
        with open(path, "rb") as source, storage.encrypted_output(key) as out:
            while block := source.read(1 << 20):
                digest.update(block)
                out.write(block)
        files.append(
            {
                "name": relative,
                "size": path.stat().st_size,
                "sha256": digest.hexdigest(),
                "storage_key": key,
            }
        )
    card_path = output / "hearth_model_card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    values = {
        "name": f"{job.base_model.name}-job{job.pk}",
        "dataset_version": job.dataset_version,
        "method": job.params.get("method", "lora"),
        "card": card,
        "metrics": card.get("metrics", {}),
    } | fields
    with transaction.atomic():
        version = ModelVersion.objects.create(
            owner=job.owner, job=job, base_model=job.base_model, files=files, **values
        )
        from guardian.shortcuts import assign_perm

        for action in ("view", "change", "delete"):
            assign_perm(f"jobs.{action}_modelversion", job.owner, version)
        record(
            action="jobs.modelversion.create",
            obj=version,
            actor=job.owner,
            details={"job": job.pk, "files": len(files), "origin": version.origin},
        )
    return version


# -- the reaper (beat) ---------------------------------------------------------------------------
def _requeue(job_id: int, reason: str, *, delay_seconds: int = 0) -> None:
    """Back to the queue; `delay_seconds` keeps a worker with busy GPUs from taking the job
    straight back in a tight loop."""
    from .tasks import task_for_kind

    kind = Job.objects.values_list("kind", flat=True).get(pk=job_id)

    if job_transition(
        job_id=job_id, to=Job.Status.RETRYING, allowed_from={Job.Status.RUNNING}, message=reason
    ) and job_transition(
        job_id=job_id,
        to=Job.Status.QUEUED,
        allowed_from={Job.Status.RETRYING},
        message="requeued: resumes from its last checkpoint",
    ):
        transaction.on_commit(
            lambda: task_for_kind(kind).apply_async((job_id,), countdown=delay_seconds)
        )


def reap_lost_attempts() -> int:
    """Attempts whose lease expired lost their worker: requeue their jobs (not the user's
    fault, so not counted against them). A job being cancelled just ends cancelled."""
    expired = JobAttempt.objects.filter(
        outcome=JobAttempt.Outcome.RUNNING, lease_expires_at__lt=timezone.now()
    ).select_related("job")
    count = 0
    for attempt in expired:
        with transaction.atomic():
            if not JobAttempt.objects.filter(
                pk=attempt.pk, outcome=JobAttempt.Outcome.RUNNING
            ).update(outcome=JobAttempt.Outcome.LOST, ended_at=timezone.now()):
                continue
            record(
                action="jobs.attempt.lost",
                obj=attempt.job,
                actor_username="system",
                outcome="error",
                details={"attempt": attempt.number, "worker": attempt.worker},
            )
            if attempt.job.status == Job.Status.CANCELLING:
                job_cancelled(job_id=attempt.job_id)
            else:
                _requeue(attempt.job_id, f"worker {attempt.worker} stopped answering")
        count += 1
    return count


def redispatch_stale_queued(*, older_than: timedelta | None = None) -> int:
    """Queued jobs whose message may have been lost (a Redis restart without persistence) are
    sent again; the atomic claim makes a duplicate message harmless."""
    import redis

    from .tasks import GPU_TASKS, task_for_kind

    if older_than is None:
        older_than = timedelta(seconds=settings.HEARTH_REDISPATCH_SECONDS)
    if redis.Redis.from_url(settings.REDIS_URL).llen("gpu"):
        return 0  # messages are waiting in the queue: nothing was lost
    stale = Job.objects.filter(
        kind__in=GPU_TASKS,
        status=Job.Status.QUEUED,
        created_at__lt=timezone.now() - older_than,
    ).exclude(attempts__outcome=JobAttempt.Outcome.RUNNING)
    jobs = list(stale.values_list("pk", "kind"))
    for job_id, kind in jobs:
        task_for_kind(kind).delay(job_id)
    return len(jobs)
