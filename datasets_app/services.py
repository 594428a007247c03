"""Writes for datasets. Owners get every object permission on what they create."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.services import record

from .models import Dataset

OWNER_PERMISSIONS = ("view", "change", "delete", "view_raw", "use", "manage")
EDITABLE_FIELDS = ("name", "description")


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
