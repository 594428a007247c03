"""Processing jobs that turn one dataset version into a derived one: desensitization and
augmentation. Submitted from a request (validated there, so bad parameters never queue), run by
a CPU-queue worker that streams the decrypted rows through the transform into a new encrypted
file — plaintext never touches the disk."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError

from audit.services import record
from jobs.models import Job
from jobs.runner import Progress, UserError
from jobs.services import job_submit

from . import selectors, storage
from .augment import AugmentConfig, AugmentConfigError, AugmentReport, augment_rows
from .crypto import keystore_from_settings
from .desensitize import PRESETS, Desensitizer, Policy, PolicyError
from .formats import SchemaBuilder, iter_jsonl
from .models import Dataset, DatasetVersion
from .services import dataset_version_derive

PREVIEW_ROWS = 5


# -- parameters ---------------------------------------------------------------------------------
def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_policy(*, preset: str = "", policy: dict | None = None) -> Policy:
    """A preset, optionally adjusted by an explicit policy (which wins key by key)."""
    if preset and preset not in PRESETS:
        raise ValidationError(
            {"preset": f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}."}
        )
    base = PRESETS[preset].policy.to_dict() if preset else {}
    try:
        return Policy.from_dict(_merge(base, policy or {}))
    except PolicyError as exc:
        raise ValidationError({"policy": str(exc)}) from exc


def build_augment_config(config: dict) -> AugmentConfig:
    try:
        return AugmentConfig.from_dict(config)
    except AugmentConfigError as exc:
        raise ValidationError({"config": str(exc)}) from exc


def pseudonym_key(dataset: Dataset) -> bytes:
    # Per dataset: the same value gets the same pseudonym across a dataset's versions (joins
    # work), but not across datasets.
    return keystore_from_settings().derive("pseudonym", f"dataset:{dataset.pk}".encode())


# -- submit and preview (web process) ----------------------------------------------------------
def desensitize_submit(*, version: DatasetVersion, actor, preset: str = "", policy=None) -> Job:
    from .tasks import run_desensitize

    chosen = build_policy(preset=preset, policy=policy)
    params = {"preset": preset, "policy": chosen.to_dict()}
    return job_submit(
        kind=Job.Kind.DESENSITIZE,
        owner=actor,
        params=params,
        dataset_version=version,
        task=run_desensitize,
    )


def augment_submit(
    *, version: DatasetVersion, actor, config: dict, generator_model: int | None = None
) -> Job:
    """`generator_model`: a base model whose continuations feed the context-extension op."""
    from jobs.models import BaseModel

    from .tasks import run_augment

    chosen = build_augment_config(config)
    params = {"config": chosen.to_dict(), "generator_model": None}
    if generator_model is not None:
        if not BaseModel.objects.restrict(actor, "view").filter(pk=generator_model).exists():
            raise ValidationError({"generator_model": "No such base model."})
        if "context" not in chosen.ops:
            raise ValidationError({"generator_model": "Enable the `context` op to use a model."})
        params["generator_model"] = generator_model
    return job_submit(
        kind=Job.Kind.AUGMENT,
        owner=actor,
        params=params,
        dataset_version=version,
        task=run_augment,
    )


def desensitize_preview(*, version: DatasetVersion, user, preset: str = "", policy=None) -> dict:
    """Before/after for the first rows. Without view_raw, `before` is withheld and sensitive
    columns the policy leaves unchanged stay masked in `after`."""
    chosen = build_policy(preset=preset, policy=policy)
    desensitizer = Desensitizer(chosen, pseudonym_key(version.dataset))
    rows = selectors.version_rows(version, PREVIEW_ROWS)
    raw = selectors.can_view_raw(user, version.dataset)
    hidden = set() if raw else set(version.sensitive_columns)
    pairs = []
    # preview() needs no fit pass: bins with a minimum size are shown unmerged.
    for pair in desensitizer.preview(rows, n=PREVIEW_ROWS):
        before, after = pair["before"], pair["after"]
        if hidden:
            after = {
                k: (selectors.MASK if k in hidden and v == before.get(k) else v)
                for k, v in after.items()
            }
        pairs.append({"before": before if raw else None, "after": after})
    record(
        action="datasets_app.version.desensitize_preview",
        actor=user,
        obj=version,
        details={"preset": preset, "raw": raw, "rows": len(pairs)},
    )
    return {"rows": pairs, "raw": raw}


# -- run (worker) -------------------------------------------------------------------------------
def _counted(rows: Iterable[dict], total: int, progress: Progress, label: str) -> Iterator[dict]:
    for done, row in enumerate(rows, 1):
        yield row
        if done % 200 == 0:
            progress(done / max(total, 1), f"{label}: {done:,} of {total:,} rows")


def _write_derived(
    job: Job,
    operation: str,
    transform: Callable[[Iterator[dict]], Iterable[dict]],
    progress: Progress,
    label: str,
) -> tuple[str, Any, SchemaBuilder, int]:
    source = job.dataset_version
    key = storage.new_storage_key(f"datasets/{source.dataset_id}")
    schema = SchemaBuilder()
    written = 0
    try:
        with (
            storage.open_plaintext(source.storage_key) as stream,
            storage.encrypted_output(key) as out,
        ):
            rows = _counted(iter_jsonl(stream), source.row_count, progress, label)
            for row in transform(rows):
                out.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
                schema.add(row)
                written += 1
    except BaseException:
        storage.delete(key)
        raise
    return key, out, schema, written


def _finish(
    job: Job,
    operation: str,
    key: str,
    out,
    schema: SchemaBuilder,
    report: dict,
    samples: list,
    sensitive: list[str],
) -> dict:
    try:
        version = dataset_version_derive(
            parent=job.dataset_version,
            actor=job.owner,
            operation=operation,
            parameters=job.params,
            key=key,
            sha256=out.sha256,
            size_bytes=out.plaintext_size,
            row_count=schema.result()["row_count"],
            schema=schema.result(),
            report=report,
            report_samples=samples,
            sensitive_columns=sensitive,
        )
    except BaseException:
        storage.delete(key)
        raise
    return {"result_dataset_version": version, "report": report}


def run_desensitize(job: Job, progress: Progress) -> dict:
    try:
        policy = Policy.from_dict(job.params["policy"])
    except PolicyError as exc:
        raise UserError(str(exc)) from exc
    desensitizer = Desensitizer(policy, pseudonym_key(job.dataset_version.dataset))
    if desensitizer.needs_fit:
        with storage.open_plaintext(job.dataset_version.storage_key) as stream:
            desensitizer.fit(iter_jsonl(stream))
    key, out, schema, _ = _write_derived(
        job,
        DatasetVersion.Operation.DESENSITIZE,
        lambda rows: (desensitizer.transform_row(r) for r in rows),
        progress,
        "masking",
    )
    report = desensitizer.report()
    samples = report.pop("samples", [])
    # Columns a rule rewrote are no longer raw; the parent's other marks carry over.
    treated = set(policy.columns)
    sensitive = [c for c in job.dataset_version.sensitive_columns if c not in treated]
    return _finish(
        job, DatasetVersion.Operation.DESENSITIZE, key, out, schema, report, samples, sensitive
    )


def _generator(model_id: int | None, seed: int):
    if model_id is None:
        return None
    from jobs.engine.generation import load_generator
    from jobs.models import BaseModel

    model = BaseModel.objects.get(pk=model_id)
    if model.source != BaseModel.Source.LOCAL:
        raise UserError(f"{model.name} is not available on this worker (hub models come later).")
    return load_generator(model.location, seed=seed, trust_remote_code=model.trust_remote_code)


def run_augment(job: Job, progress: Progress) -> dict:
    try:
        config = AugmentConfig.from_dict(job.params["config"])
    except AugmentConfigError as exc:
        raise UserError(str(exc)) from exc
    generate = _generator(job.params.get("generator_model"), config.seed)
    collected = AugmentReport()
    key, out, schema, _ = _write_derived(
        job,
        DatasetVersion.Operation.AUGMENT,
        lambda rows: augment_rows(rows, config, generate=generate, report=collected),
        progress,
        "augmenting",
    )
    report = collected.report()
    samples = report.pop("samples", [])
    return _finish(
        job,
        DatasetVersion.Operation.AUGMENT,
        key,
        out,
        schema,
        report,
        samples,
        list(job.dataset_version.sensitive_columns),
    )
