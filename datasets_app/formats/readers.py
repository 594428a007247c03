"""Stream the records of a sniffed dataset file: `iter_records(path, sniffed)`.

Each item is `(line_no, record_dict)` or `(line_no, RowError(message))`; a bad row never stops
the stream, a broken file raises IngestError. "line_no" is, per format:

- jsonl, text: the physical line (1-based, blank lines counted);
- csv, tsv: the physical line where the row starts (the header is line 1; a quoted field may
  span lines);
- json: the index of the item in the array (1-based);
- parquet: the row number (1-based).

Text rule (plain text files): one record `{"text": line}` per non-blank line, the line ending
removed and nothing else; blank lines are skipped, so paragraphs are not merged. One rule is
predictable for users; join lines upstream if records must be paragraphs.

Memory: files are read through buffered streams; a single line or CSV field larger than
MAX_LINE_CHARS / MAX_FIELD_CHARS is refused rather than buffered.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson
import pyarrow as pa
import pyarrow.parquet as pq

from .sniff import IngestError, Sniffed

MAX_LINE_CHARS = 16 * 1024 * 1024  # one JSONL record / text line
MAX_FIELD_CHARS = 16 * 1024 * 1024  # one CSV field; beyond: almost surely an unclosed quote
PARQUET_BATCH_ROWS = 512
PROGRESS_STEP = 4 * 1024 * 1024  # bytes between progress callbacks
_EXACT_POSITION_LIMIT = 64 * 1024 * 1024  # re-scan this much to locate a JSON syntax error

Progress = Callable[[int, int], None]  # (bytes_done, bytes_total)


@dataclass(frozen=True)
class RowError:
    """Why one row was rejected (the row is skipped, the file is still read)."""

    message: str


Record = dict[str, Any]
RecordOrError = tuple[int, Record | RowError]


def iter_records(
    path: str | os.PathLike[str], sniffed: Sniffed, *, progress: Progress | None = None
) -> Iterator[RecordOrError]:
    """Yield the records of `path`; `progress(bytes_done, bytes_total)` is called now and then."""
    path = Path(path)
    readers = {
        "jsonl": _iter_jsonl,
        "json": _iter_json_array,
        "csv": _iter_delimited,
        "tsv": _iter_delimited,
        "parquet": _iter_parquet,
        "text": _iter_text,
    }
    try:
        reader = readers[sniffed.format]
    except KeyError:
        raise ValueError(f"unknown format {sniffed.format!r}") from None
    try:
        yield from reader(path, sniffed, progress)
    except UnicodeDecodeError as err:
        # sniff() decoded the whole file; this means the file changed underneath us.
        raise IngestError(
            "encoding", f"The file could not be decoded as {sniffed.encoding}: {err.reason}."
        ) from err


# -- streams --------------------------------------------------------------------------------------
class _ProgressRaw(io.RawIOBase):
    """A raw file that reports how many bytes were read, at most every PROGRESS_STEP bytes."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        super().__init__()
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self.total = os.fstat(self._file.fileno()).st_size
        self.done = 0
        self._reported = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer) or 0
        self.done += n
        if self._progress and self.done - self._reported >= PROGRESS_STEP:
            self._reported = self.done
            self._progress(self.done, self.total)
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_binary(path: Path, progress: Progress | None) -> tuple[io.BufferedReader, _ProgressRaw]:
    raw = _ProgressRaw(path, progress)
    return io.BufferedReader(raw, 256 * 1024), raw


def _open_text(
    path: Path, sniffed: Sniffed, progress: Progress | None, newline: str | None
) -> io.TextIOWrapper:
    binary, _ = _open_binary(path, progress)
    return io.TextIOWrapper(binary, encoding=sniffed.codec, errors="strict", newline=newline)


def _lines(stream: io.TextIOBase) -> Iterator[tuple[int, str | None]]:
    """(line_no, line) with the line ending kept; None for a line over MAX_LINE_CHARS."""
    line_no = 0
    while line := stream.readline(MAX_LINE_CHARS):
        line_no += 1
        if len(line) == MAX_LINE_CHARS and not line.endswith("\n"):
            while (more := stream.readline(MAX_LINE_CHARS)) and not more.endswith("\n"):
                pass  # skip the rest of the oversized line without keeping it
            yield line_no, None
            continue
        yield line_no, line


def _too_long() -> RowError:
    return RowError(f"the line is longer than {MAX_LINE_CHARS:,} characters")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


# -- JSON Lines, text -----------------------------------------------------------------------------
def _nan_to_null(_constant: str) -> None:
    # NaN / Infinity are not JSON (Python's json.dumps writes them anyway): store null.
    return None


def _iter_jsonl(path: Path, sniffed: Sniffed, progress: Progress | None) -> Iterator[RecordOrError]:
    with _open_text(path, sniffed, progress, newline=None) as stream:
        for line_no, line in _lines(stream):
            if line is None:
                yield line_no, _too_long()
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line, parse_constant=_nan_to_null)
            except json.JSONDecodeError as err:
                yield line_no, RowError(f"invalid JSON: {err.msg} (column {err.colno})")
                continue
            if isinstance(value, dict):
                yield line_no, value
            else:
                yield line_no, RowError(f"expected a JSON object {{…}}, found {_kind(value)}")


def _iter_text(path: Path, sniffed: Sniffed, progress: Progress | None) -> Iterator[RecordOrError]:
    with _open_text(path, sniffed, progress, newline=None) as stream:
        for line_no, line in _lines(stream):
            if line is None:
                yield line_no, _too_long()
            elif line.strip():
                yield line_no, {"text": line.removesuffix("\n")}


# -- CSV / TSV ------------------------------------------------------------------------------------
def unique_names(raw: list[str]) -> list[str]:
    """Column names: stripped, empty ones become column_<n>, duplicates get _2, _3, …"""
    names = [name.strip() or f"column_{i}" for i, name in enumerate(raw, 1)]
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        if name in seen:
            k = 2
            while f"{name}_{k}" in taken:
                k += 1
            name = f"{name}_{k}"
            taken.add(name)
        seen.add(name)
        out.append(name)
    return out


def _raise_field_limit() -> None:
    # csv's default limit (128 Ki chars) refuses long documents; the limit is process-wide, so
    # only ever raise it, and keep it finite: it is what bounds memory on an unclosed quote.
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)


def _iter_delimited(
    path: Path, sniffed: Sniffed, progress: Progress | None
) -> Iterator[RecordOrError]:
    _raise_field_limit()
    # csv.reader (not DictReader): the header needs renaming and short/long rows must be
    # reported, not silently padded with None or packed under a rest key.
    with _open_text(path, sniffed, progress, newline="") as stream:
        reader = csv.reader(stream, delimiter=sniffed.delimiter)
        header: list[str] | None = None
        width = 0
        previous = 0  # reader.line_num after the last row: the next row starts on the next line
        while True:
            start = previous + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                if reader.line_num == previous or "field larger than field limit" in str(err):
                    raise _unreadable_csv(start, err) from err
                previous = reader.line_num
                if header is None:
                    raise IngestError(
                        "header",
                        f"The header row (line {start}) cannot be read: {err}.",
                        line=start,
                    ) from err
                yield start, RowError(f"malformed {sniffed.format.upper()} row: {err}")
                continue
            previous = reader.line_num
            if not row:
                continue  # blank line
            if header is None:
                if not any(cell.strip() for cell in row):
                    raise IngestError(
                        "header",
                        f"The first row (line {start}) must name the columns, but it is empty.",
                        line=start,
                    )
                header = unique_names(row)
                width = len(header)
                continue
            if len(row) != width:
                if len(row) > width and not any(cell.strip() for cell in row[width:]):
                    row = row[:width]  # trailing empty cells (stray delimiters): harmless
                else:
                    yield (
                        start,
                        RowError(f"expected {width} fields (as in the header), found {len(row)}"),
                    )
                    continue
            yield start, dict(zip(header, row, strict=True))


def _unreadable_csv(line: int, err: csv.Error) -> IngestError:
    if "field larger than field limit" in str(err):
        return IngestError(
            "parse",
            f"From line {line} on, a field is longer than {MAX_FIELD_CHARS:,} characters: most "
            'likely a quote (") opens a field and is never closed.',
            line=line,
        )
    return IngestError("parse", f"The file cannot be read as CSV at line {line}: {err}.", line=line)


# -- JSON array -----------------------------------------------------------------------------------
class _Utf8Reader:
    """Bytes in UTF-8 from a text stream: ijson reads bytes, and only UTF-8. A plain object with
    read(): ijson's C backend prefers readinto() on io classes, which this does not need."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 64 * 1024
        while len(self._pending) < size:
            chunk = self._text.read(size // 2 or 1)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> _Utf8Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_source(
    path: Path, sniffed: Sniffed, progress: Progress | None
) -> tuple[Any, _ProgressRaw]:
    binary, raw = _open_binary(path, progress)
    if sniffed.encoding == "utf-8":
        if sniffed.has_bom:
            binary.read(3)
        return binary, raw
    text = io.TextIOWrapper(binary, encoding=sniffed.codec, errors="strict", newline="")
    return _Utf8Reader(text), raw


def _iter_json_array(
    path: Path, sniffed: Sniffed, progress: Progress | None
) -> Iterator[RecordOrError]:
    index = 0
    backend: Any = ijson  # the C (yajl2) backend: fast, but limited to 64-bit integers
    while True:
        source, raw = _json_source(path, sniffed, progress)
        skip = index
        try:
            with source:
                for item in backend.items(source, "item", use_float=True):
                    if skip:
                        skip -= 1  # already yielded before switching backends
                        continue
                    index += 1
                    if isinstance(item, dict):
                        yield index, item
                    else:
                        yield (
                            index,
                            RowError(f"item {index} is {_kind(item)}, not a JSON object {{…}}"),
                        )
            return
        except ijson.JSONError as err:
            if "integer overflow" in str(err) and backend is ijson:
                # A number beyond 64 bits (an unquoted account or ID number): Python's backend
                # reads big integers; restart with it and skip what was already yielded.
                backend = ijson.get_backend("python")
                continue
            raise _json_syntax_error(path, sniffed, index, raw.done, err) from err


def _json_syntax_error(
    path: Path, sniffed: Sniffed, records: int, bytes_read: int, err: Exception
) -> IngestError:
    lines = str(err).splitlines()
    reason = re.sub(r"^(parse|lexical) error:\s*", "", lines[0]) if lines else "syntax error"
    near = lines[1].strip() if len(lines) > 1 else ""
    where = f"after record {records}" if records else "before the first record"
    line: int | None = None
    position = None
    if bytes_read <= _EXACT_POSITION_LIMIT:
        position = _locate_json_error(path, sniffed)
    if position:
        line, column = position
        at = f"at line {line}, column {column} ({where})"
    else:
        at = f"in the first {bytes_read:,} bytes ({where})"
    message = f"The JSON array is malformed {at}: {reason}."
    if near:
        message += f" Near: {near}"
    return IngestError("parse", message, line=line)


def _locate_json_error(path: Path, sniffed: Sniffed) -> tuple[int, int] | None:
    """(line, column) of a JSON syntax error, from ijson's pure-Python backend, which reports
    character offsets (the C backend does not). Slow (~25 MB/s): only on the error path."""
    source, _ = _json_source(path, sniffed, None)
    offset: int | None = None
    try:
        with source:
            for _ in ijson.get_backend("python").parse(source):
                pass
    except ijson.IncompleteJSONError:
        offset = -1  # the text ended early: the error is at the end
    except ijson.JSONError as err:
        match = re.search(r" at (\d+)$", str(err))
        offset = int(match.group(1)) if match else None
    if offset is None:
        return None
    # Walk the decoded text (BOM excluded, newlines untranslated, as the parser saw it).
    line, column, seen = 1, 1, 0
    with _open_text(path, sniffed, None, newline="") as text:
        while chunk := text.read(64 * 1024):
            if 0 <= offset < seen + len(chunk):
                chunk = chunk[: offset - seen]
            newlines = chunk.count("\n")
            if newlines:
                line += newlines
                column = len(chunk) - chunk.rfind("\n")
            else:
                column += len(chunk)
            seen += len(chunk)
            if 0 <= offset <= seen:
                break
    return line, column


# -- Parquet --------------------------------------------------------------------------------------
def _plain(arrow_type: pa.DataType) -> bool:
    """Types whose to_pylist() values json.dumps writes as they are."""
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_null(arrow_type)
    )


def _jsonable(value: Any) -> Any:
    """Parquet values JSON has no type for, as the closest JSON value."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):  # tuples: map entries
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        # Money is often decimal: a float only when it is exact, else the exact digits.
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iter_parquet(
    path: Path, sniffed: Sniffed, progress: Progress | None
) -> Iterator[RecordOrError]:
    row = 0
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        names = unique_names([field.name for field in schema])
        convert = [not _plain(field.type) for field in schema]
        total_rows = parquet.metadata.num_rows or 1
        size = path.stat().st_size
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            columns = [column.to_pylist() for column in batch.columns]
            for i, needs in enumerate(convert):
                if needs:
                    columns[i] = [_jsonable(value) for value in columns[i]]
            for values in zip(*columns, strict=True):
                row += 1
                yield row, dict(zip(names, values, strict=True))
            if progress:
                progress(size * row // total_rows, size)
    except (pa.ArrowException, OSError) as err:
        raise IngestError(
            "parse", f"The Parquet file cannot be read (after row {row}): {err}", line=row or None
        ) from err


__all__ = ["RecordOrError", "RowError", "iter_records", "unique_names"]
