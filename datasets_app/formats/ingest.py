"""Turn an uploaded dataset file into normalised UTF-8 JSON Lines plus a schema and a row-error
report: `normalize()`. Also the helpers that read and write normalised JSON Lines.

Normalised data: one JSON object per line, `json.dumps(record, ensure_ascii=False)` + "\\n",
UTF-8, keys in the dataset's column order (first-seen). NaN/Infinity become null (they are not
JSON). Records are never padded with missing columns.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from .readers import Progress, RowError, iter_records
from .schema import SchemaBuilder
from .sniff import IngestError, sniff

WRITE_BUFFER = 1024 * 1024  # bytes gathered before one write() to the (encrypting) writer
READ_CHUNK = 1024 * 1024


@dataclass
class IngestResult:
    format: str
    encoding: str
    row_count: int
    schema: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)  # first max_errors: line, message
    error_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Writer:
    """Buffers encoded lines so the underlying writer sees few, large writes."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._buffer = bytearray()

    def write(self, line: bytes) -> None:
        self._buffer += line
        if len(self._buffer) >= WRITE_BUFFER:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._out.write(bytes(self._buffer))
            self._buffer.clear()


def json_safe(value: Any) -> Any:
    """NaN and Infinity are not JSON: they become null (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def encode_record(record: Mapping[str, Any]) -> tuple[bytes, Mapping[str, Any]]:
    """(the JSON line, the record as written). Raises ValueError for what JSON cannot hold."""
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except ValueError:
        record = json_safe(record)  # rare: only pay for the walk when a NaN is present
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except TypeError as err:
        raise ValueError(f"a value cannot be stored as JSON: {err}") from err
    try:
        return text.encode("utf-8") + b"\n", record
    except UnicodeEncodeError as err:
        # JSON allows "\ud800" escapes; a lone surrogate is not text and UTF-8 cannot hold it.
        raise ValueError(
            "the record contains an invalid Unicode escape (an unpaired surrogate like \\ud800)"
        ) from err


def normalize(
    path: str | os.PathLike[str],
    filename: str,
    out: BinaryIO,
    *,
    max_errors: int = 100,
    max_error_ratio: float | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Sniff and read `path` (uploaded as `filename`), write valid records to `out` as JSON
    Lines, infer the schema, and collect row errors (the first `max_errors`, and their count).

    Raises IngestError when the file is refused (see sniff), cannot be parsed, has no valid row,
    or when `max_error_ratio` is given and more than that fraction of its rows are invalid.
    `progress(bytes_done, bytes_total)` is called while reading and once at the end.
    After an IngestError, `out` may hold the records written so far: discard it.
    """
    sniffed = sniff(path, filename)
    schema = SchemaBuilder(typed_strings=sniffed.format in ("csv", "tsv"))
    writer = _Writer(out)
    errors: list[dict[str, Any]] = []
    error_count = 0
    first_error: tuple[int, str] | None = None
    for line, item in iter_records(path, sniffed, progress=progress):
        if not isinstance(item, RowError):
            try:
                data, record = encode_record(schema.ordered(item))
            except ValueError as err:
                item = RowError(str(err))
            else:
                writer.write(data)
                schema.add(record)
                continue
        error_count += 1
        if first_error is None:
            first_error = (line, item.message)
        if len(errors) < max_errors:
            errors.append({"line": line, "message": item.message})
    writer.flush()

    rows = schema.row_count
    if rows == 0:
        if first_error:
            line, message = first_error
            more = f" ({error_count:,} invalid rows in all)" if error_count > 1 else ""
            raise IngestError(
                "no_rows", f"No valid rows: first error at line {line}: {message}{more}.", line=line
            )
        raise IngestError("no_rows", "The file holds no records (only a header or an empty list).")
    total = rows + error_count
    if max_error_ratio is not None and error_count > max_error_ratio * total:
        assert first_error is not None
        line, message = first_error
        raise IngestError(
            "too_many_errors",
            f"{error_count:,} of {total:,} rows are invalid ({error_count / total:.0%}, more than "
            f"the {max_error_ratio:.0%} allowed); first error at line {line}: {message}.",
            line=line,
        )
    if progress:
        size = os.stat(path).st_size
        progress(size, size)
    return IngestResult(
        format=sniffed.format,
        encoding=sniffed.encoding,
        row_count=rows,
        schema=schema.result(),
        errors=errors,
        error_count=error_count,
    )


def write_jsonl(records: Iterable[Mapping[str, Any]], out: BinaryIO) -> int:
    """Write records as normalised JSON Lines; returns how many. ValueError on a record JSON
    cannot hold (see encode_record)."""
    writer = _Writer(out)
    count = 0
    for record in records:
        writer.write(encode_record(record)[0])
        count += 1
    writer.flush()
    return count


def iter_jsonl(stream: BinaryIO) -> Iterator[dict[str, Any]]:
    """Read normalised JSON Lines back, streaming. Needs only `stream.read(size)`, so any
    decrypting reader works. A corrupt line raises IngestError("parse")."""
    parts: list[bytes] = []  # the current, unfinished line
    line_no = 0
    while chunk := stream.read(READ_CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start:end])
            line = b"".join(parts)
            parts.clear()
            line_no += 1
            start = end + 1
            if line.strip():
                yield _load_line(line, line_no)
        parts.append(chunk[start:])
    line = b"".join(parts)
    if line.strip():
        yield _load_line(line, line_no + 1)


def _load_line(line: bytes, line_no: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise IngestError("parse", f"Normalised data line {line_no} is corrupt: {err}") from err
    if not isinstance(value, dict):
        raise IngestError("parse", f"Normalised data line {line_no} is not a JSON object.")
    return value
