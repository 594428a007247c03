"""Reads for datasets. Every function takes the user and goes through the permission funnel."""

from __future__ import annotations

from itertools import islice
from typing import Any

from accounts.restrict import user_can

from . import storage
from .formats import iter_jsonl
from .models import Dataset, DatasetVersion

MASK = "••••••"


def dataset_list(*, user, action: str = "view"):
    """Datasets the user may act on, deleted ones excluded."""
    return Dataset.objects.restrict(user, action).alive().select_related("owner")


def version_list(*, user, dataset: Dataset | None = None):
    versions = DatasetVersion.objects.restrict(user, "view").select_related("dataset", "parent")
    return versions.filter(dataset=dataset) if dataset is not None else versions


def can_view_raw(user, dataset: Dataset) -> bool:
    return user_can(user, "view_raw", dataset)


def _mask(value: Any) -> Any:
    # Hide the value and its length; keep nulls visible (they are not data).
    return None if value is None else MASK


def version_rows(version: DatasetVersion, limit: int):
    """The first `limit` rows, decrypted on the fly (nothing written to disk)."""
    with storage.open_plaintext(version.storage_key) as stream:
        return list(islice(iter_jsonl(stream), limit))


def version_preview(*, user, version: DatasetVersion, limit: int = 20) -> dict:
    """First rows with column types; sensitive columns masked without `view_raw`."""
    raw = can_view_raw(user, version.dataset)
    rows = version_rows(version, limit)
    hidden = set() if raw else set(version.sensitive_columns)
    if hidden:
        rows = [{k: (_mask(v) if k in hidden else v) for k, v in row.items()} for row in rows]
    columns = [
        {
            "name": c["name"],
            "type": c.get("type", ""),
            "sensitive": c["name"] in set(version.sensitive_columns),
        }
        for c in version.schema.get("columns", [])
    ]
    return {"columns": columns, "rows": rows, "masked_columns": sorted(hidden), "raw": raw}
