"""Audit export as CSV or JSON Lines, streamed row by row (constant memory, any size)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from . import chain

# The chained fields, with the chain's own bookkeeping and the actor's id around them.
COLUMNS = (
    "position",
    "id",
    chain.CHAINED_FIELDS[0],
    "actor_id",
    *chain.CHAINED_FIELDS[1:],
    "prev_hash",
    "hash",
)
FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}
_BATCH = 500  # rows per chunk sent: fewer, larger writes than one per row
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write() returns what it was given (csv.writer needs one)."""

    def write(self, value: str) -> str:
        return value


def _rows(events: QuerySet) -> Iterator[dict[str, Any]]:
    for row in events.values(*COLUMNS).iterator(chunk_size=2000):
        row["created_at"] = chain.timestamp(row["created_at"])
        yield row


def _cell(value: Any) -> Any:
    # User agents, object names and user names come from outside: a cell starting like a
    # formula would run as one in a spreadsheet (CSV injection), so it is quoted as text.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_stream(events: QuerySet) -> Iterator[str]:
    """CSV with a UTF-8 byte order mark first: without it Excel reads UTF-8 as the local code
    page and Chinese text turns to mojibake. `details` is a JSON cell."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(COLUMNS)
    chunk: list[str] = []
    for row in _rows(events):
        row["details"] = json.dumps(row["details"], ensure_ascii=False, sort_keys=True)
        chunk.append(writer.writerow([_cell(row[c]) for c in COLUMNS]))
        if len(chunk) >= _BATCH:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def jsonl_stream(events: QuerySet) -> Iterator[str]:
    chunk: list[str] = []
    for row in _rows(events):
        chunk.append(json.dumps(row, ensure_ascii=False) + "\n")
        if len(chunk) >= _BATCH:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def stream(events: QuerySet, fmt: str) -> Iterator[str]:
    return csv_stream(events) if fmt == "csv" else jsonl_stream(events)
