"""Writes for datasets and their versions. Owners get every object permission on what they
create; every write is recorded in the audit trail inside its transaction."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.services import record

from . import storage
from .formats import IngestError, normalize
from .models import Dataset, DatasetVersion

OWNER_PERMISSIONS = ("view", "change", "delete", "view_raw", "use", "manage")
EDITABLE_FIELDS = ("name", "description")


class DuplicateVersion(ValidationError):
    def __init__(self, existing: DatasetVersion):
        self.existing = existing
        super().__init__(
            f"This file is identical to version {existing.number} (same SHA-256); "
            "no new version was created.",
            code="duplicate",
        )


def dataset_create(*, owner, name: str, description: str = "") -> Dataset:
    with transaction.atomic():
        dataset = Dataset.objects.create(owner=owner, name=name, description=description)
        for action in OWNER_PERMISSIONS:
            assign_perm(f"datasets_app.{action}_dataset", owner, dataset)
        record(
            action="datasets_app.dataset.create", actor=owner, obj=dataset, details={"name": name}
        )
    return dataset


def dataset_update(*, dataset: Dataset, actor, **changes) -> Dataset:
    before = {f: getattr(dataset, f) for f in EDITABLE_FIELDS if f in changes}
    with transaction.atomic():
        for field, value in changes.items():
            if field not in EDITABLE_FIELDS:
                raise ValueError(f"{field} cannot be edited")
            setattr(dataset, field, value)
        dataset.save(update_fields=[*changes, "updated_at"])
        after = {f: getattr(dataset, f) for f in before}
        record(
            action="datasets_app.dataset.change",
            actor=actor,
            obj=dataset,
            details={"before": before, "after": after},
        )
    return dataset


def dataset_soft_delete(*, dataset: Dataset, actor) -> Dataset:
    with transaction.atomic():
        dataset.deleted_at = timezone.now()
        dataset.deleted_by = actor
        dataset.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
        record(action="datasets_app.dataset.delete", actor=actor, obj=dataset)
    return dataset


def dataset_restore(*, dataset: Dataset, actor) -> Dataset:
    if dataset.purged_at is not None:
        raise ValidationError("This dataset was purged: its files no longer exist.")
    with transaction.atomic():
        dataset.deleted_at = None
        dataset.deleted_by = None
        dataset.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
        record(action="datasets_app.dataset.restore", actor=actor, obj=dataset)
    return dataset


def dataset_purge(*, dataset: Dataset, actor=None) -> int:
    """Delete the encrypted files of a soft-deleted dataset; returns how many were removed."""
    if dataset.deleted_at is None:
        raise ValidationError("Only deleted datasets can be purged.")
    keys = list(dataset.versions.values_list("storage_key", flat=True))
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(purged_at=timezone.now())
        record(
            action="datasets_app.dataset.purge",
            actor=actor,
            actor_username="" if actor else "system",
            obj=dataset,
            details={"files": len(keys)},
        )
        # Files go only once the purge is recorded; a crash leaves files, never a silent gap.
        transaction.on_commit(lambda: [storage.delete(key) for key in keys])
    return len(keys)


def dataset_purge_expired(*, retention_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=retention_days)
    expired = list(Dataset.objects.filter(deleted_at__lt=cutoff, purged_at__isnull=True))
    for dataset in expired:
        dataset_purge(dataset=dataset)
    return len(expired)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _next_number(dataset: Dataset) -> int:
    # Lock the dataset row so two concurrent uploads cannot take the same number.
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    return (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1


def dataset_version_upload(*, dataset: Dataset, actor, path: Path, filename: str) -> DatasetVersion:
    """Validate, normalise to JSON Lines, encrypt and store an uploaded file as a new version.

    A file that cannot be parsed, is binary or empty, or is identical to an existing version
    creates nothing and raises ValidationError with the reason.
    """
    source_sha256 = _file_sha256(path)
    existing = dataset.versions.filter(source_sha256=source_sha256).first()
    if existing is not None:
        raise DuplicateVersion(existing)
    key = storage.new_storage_key(f"datasets/{dataset.pk}")
    try:
        with storage.encrypted_output(key) as writer:
            result = normalize(path, filename, writer)
    except IngestError as exc:
        raise ValidationError(exc.message, code=exc.code) from exc
    try:
        with transaction.atomic():
            version = DatasetVersion.objects.create(
                dataset=dataset,
                number=_next_number(dataset),
                operation=DatasetVersion.Operation.UPLOAD,
                created_by=actor,
                created_by_username=actor.get_username(),
                original_filename=filename[:255],
                source_format=result.format,
                source_encoding=result.encoding or "",
                source_sha256=source_sha256,
                sha256=writer.sha256,
                size_bytes=writer.plaintext_size,
                stored_bytes=storage.path_for(key).stat().st_size,
                storage_key=key,
                row_count=result.row_count,
                schema=result.schema,
                validation={"errors": result.errors, "error_count": result.error_count},
            )
            record(
                action="datasets_app.version.upload",
                actor=actor,
                obj=version,
                details={
                    "dataset": dataset.pk,
                    "sha256": version.sha256,
                    "rows": version.row_count,
                    "format": version.source_format,
                    "encoding": version.source_encoding,
                    "rejected_rows": result.error_count,
                },
            )
    except BaseException:
        storage.delete(key)
        raise
    return version


def dataset_version_derive(
    *,
    parent: DatasetVersion,
    actor,
    operation: str,
    parameters: dict[str, Any],
    key: str,
    sha256: str,
    size_bytes: int,
    row_count: int,
    schema: dict,
    report: dict,
    report_samples: list,
    sensitive_columns: list[str],
) -> DatasetVersion:
    """Register a version a processing job wrote (already encrypted under `key`)."""
    dataset = parent.dataset
    with transaction.atomic():
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=_next_number(dataset),
            parent=parent,
            operation=operation,
            parameters=parameters,
            created_by=actor,
            created_by_username=actor.get_username(),
            source_format="jsonl",
            source_encoding="utf-8",
            sha256=sha256,
            size_bytes=size_bytes,
            stored_bytes=storage.path_for(key).stat().st_size,
            storage_key=key,
            row_count=row_count,
            schema=schema,
            report=report,
            report_samples=report_samples,
            sensitive_columns=sensitive_columns,
        )
        record(
            action=f"datasets_app.version.{operation}",
            actor=actor,
            obj=version,
            details={"parent": parent.pk, "sha256": sha256, "rows": row_count},
        )
    return version


def dataset_version_mark_sensitive(
    *, version: DatasetVersion, actor, columns: list[str]
) -> DatasetVersion:
    unknown = sorted(set(columns) - set(version.columns))
    if unknown:
        raise ValidationError({"sensitive_columns": f"Unknown columns: {', '.join(unknown)}"})
    before = list(version.sensitive_columns)
    with transaction.atomic():
        version.sensitive_columns = sorted(set(columns), key=version.columns.index)
        version.save(update_fields=["sensitive_columns"])
        record(
            action="datasets_app.version.mark_sensitive",
            actor=actor,
            obj=version,
            details={"before": before, "after": version.sensitive_columns},
        )
    return version
