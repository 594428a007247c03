"""Jobs that start from a model version: compression, evaluation and LoRA merge.

Submission (web process) validates the knobs with the engine's spec and refuses what no live
worker can run (a compression method none of them supports, with the workers' reasons). The
worker side mirrors training: claim, attempt with a lease, a GPU if the host has one, a private
work folder with the model version and the eval data decrypted into it, the engine as a
subprocess (`python -m jobs.engine.compress|evaluate|merge`) supervised for cancel, progress
and logs. Its report becomes the job's report; compression and merge also store a new model
version linked to its source, evaluation a `ModelEvaluation` judged by the gate.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from datasets_app import storage
from datasets_app.crypto import decrypt_to_path, keystore_from_settings

from .engine.model_specs import REPORT, SPEC_TYPES, user_fields
from .engine.spec import SpecError
from .gates import evaluation_record
from .models import Job, JobAttempt, ModelVersion, Worker
from .services import job_submit

logger = logging.getLogger(__name__)

ENGINE_MODULES = {
    Job.Kind.COMPRESSION: "jobs.engine.compress",
    Job.Kind.EVALUATION: "jobs.engine.evaluate",
    Job.Kind.MERGE: "jobs.engine.merge",
}


# -- submission (web process) ---------------------------------------------------------------------
def _validated_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    allowed = user_fields(kind)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValidationError({name: f"Not a {kind} setting." for name in unknown})
    try:
        spec = SPEC_TYPES[kind].from_dict(
            {**params, "model_dir": "model", "output_dir": "output", "events_path": "e"}
        )
        if kind == Job.Kind.MERGE:
            spec.base_dir = "base"
        spec.validate()
    except SpecError as exc:
        raise ValidationError(
            {field or "params": message for field, message in exc.errors}
        ) from exc
    return {k: v for k, v in spec.to_dict().items() if k in allowed}


def gpu_workers() -> list[Worker]:
    return [w for w in Worker.objects.live() if "gpu" in w.queues]


def compression_support(method: str, workers: list[Worker] | None = None) -> str | None:
    """None when a live GPU-queue worker supports `method`; else the reason (theirs)."""
    workers = gpu_workers() if workers is None else workers
    if not workers:
        return "no live worker serves the gpu queue"
    reasons = []
    for worker in workers:
        methods = (worker.capabilities or {}).get("compression")
        if methods is None:
            reasons.append(f"{worker.hostname} has not reported its methods yet")
            continue
        if method in methods and methods[method] is None:
            return None
        reasons.append(f"{worker.hostname}: {methods.get(method) or 'unknown method'}")
    return "; ".join(reasons)


def model_task_submit(
    *, kind: str, owner, model_version: ModelVersion, dataset_version=None, params: dict
) -> Job:
    if kind not in ENGINE_MODULES:
        raise ValidationError({"kind": f"Not a model job kind: {kind}."})
    params = dict(params)
    gate = params.pop("gate", None) if kind == Job.Kind.EVALUATION else None
    knobs = _validated_params(kind, params)
    if gate is not None:
        from .models import EvaluationGate

        if not isinstance(gate, int) or not EvaluationGate.objects.filter(pk=gate).exists():
            raise ValidationError({"gate": "No such evaluation gate."})
        knobs["gate"] = gate
    if kind == Job.Kind.COMPRESSION:
        reason = compression_support(knobs["method"])
        if reason:
            raise ValidationError({"method": f"{knobs['method']} cannot run: {reason}."})
    if kind == Job.Kind.MERGE and not model_version.is_adapter:
        raise ValidationError({"model_version": "This model version holds full weights."})
    if kind == Job.Kind.EVALUATION and dataset_version is None:
        raise ValidationError({"dataset_version": "Evaluation needs a dataset version."})
    if dataset_version is not None and not set(knobs.get("columns", {}).values()) <= set(
        dataset_version.columns
    ):
        raise ValidationError({"columns": "The dataset has no such column."})
    if knobs.get("scorer") == "label" and knobs["label_column"] not in dataset_version.columns:
        raise ValidationError({"label_column": "The dataset has no such column."})
    from .tasks import run_model_task

    return job_submit(
        kind=kind,
        owner=owner,
        params=knobs,
        dataset_version=dataset_version,
        base_model=model_version.base_model,
        source_model_version=model_version,
        task=run_model_task,
    )


# -- the worker side ------------------------------------------------------------------------------
def materialize(version: ModelVersion, folder: Path) -> Path:
    """Decrypt a model version's files into `folder` (a private work folder)."""
    keystore = keystore_from_settings()
    for entry in version.files:
        target = folder / entry["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        decrypt_to_path(storage.path_for(entry["storage_key"]), target, keystore)
    return folder


def run_model_task(job_id: int, hostname: str) -> str:
    from .training import _has_gpus, run_attempt

    return run_attempt(
        job_id,
        hostname,
        gpus_wanted=lambda job: 1 if _has_gpus() else 0,
        prepare=_prepare,
        store=_store,
    )


def _prepare(job: Job, attempt: JobAttempt, lease, work: Path, folder: Path):
    source = job.source_model_version
    values: dict[str, Any] = {
        **{k: v for k, v in job.params.items() if k != "gate"},
        "model_dir": str(materialize(source, work / "model")),
        "base_dir": job.base_model.location if source.is_adapter else "",
        "output_dir": str(work / "output"),
        "events_path": str(folder / f"events-{attempt.number}.jsonl"),
        "trust_remote_code": job.base_model.trust_remote_code,
    }
    if job.dataset_version_id and "data_path" in SPEC_TYPES[job.kind].__dataclass_fields__:
        values["data_path"] = str(work / "data.jsonl")
        decrypt_to_path(
            storage.path_for(job.dataset_version.storage_key),
            work / "data.jsonl",
            keystore_from_settings(),
        )
    spec = SPEC_TYPES[job.kind].from_dict(values)
    spec_path = work / "spec.json"
    spec.save(spec_path)
    return spec, spec_path, [sys.executable, "-m", ENGINE_MODULES[job.kind], str(spec_path)]


def _store(job: Job, work: Path, spec) -> tuple[str, dict[str, Any]]:
    report = json.loads((work / "output" / REPORT).read_text("utf-8"))
    result = _store_result(job, work / "output", report)
    return result.pop("message"), report | result


def _store_result(job: Job, output: Path, report: dict[str, Any]) -> dict[str, Any]:
    from .training import store_model

    source = job.source_model_version
    if job.kind == Job.Kind.EVALUATION:
        evaluation = evaluation_record(job=job, report=report)
        verdict = "passed" if evaluation.passed else "failed"
        return {
            "evaluation": evaluation.pk,
            "passed": evaluation.passed,
            "message": f"evaluation {verdict} the gate",
        }
    method = job.params["method"] if job.kind == Job.Kind.COMPRESSION else "full"
    origin = (
        ModelVersion.Origin.COMPRESSION
        if job.kind == Job.Kind.COMPRESSION
        else ModelVersion.Origin.MERGE
    )
    suffix = method if job.kind == Job.Kind.COMPRESSION else "merged"
    card = {
        **source.card,
        "derived_from": {"model_version": source.pk, "name": source.name},
        job.kind: {k: v for k, v in report.items() if k != "versions"},
        "created_at": timezone.now().isoformat(),
    }
    with transaction.atomic():
        version = store_model(
            job,
            output,
            name=f"{source.name}-{suffix}",
            method=method,
            origin=origin,
            parent=source,
            dataset_version=source.dataset_version,
            card=card,
            metrics=source.metrics,
        )
    return {"model_version": version.pk, "message": "model stored"}
