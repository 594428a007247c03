"""Decide what an uploaded dataset file is: its format, its text encoding, or why it is refused.

Content decides first, the file name's extension is only a hint for ambiguous content. The whole
file is streamed once through a strict decoder (blocks of BLOCK bytes, incremental decoder so a
multi-byte character split across two blocks is fine), so a file that is accepted here decodes
without error when the readers stream it again. Nothing here holds more than a block in memory.

Encodings: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), GB18030 (a
superset of GBK and GB2312, which Chinese Windows and enterprise systems export). Messages are
plain English for end users; `IngestError.code` is the stable slug that code and UIs key on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "text")

HEAD_BYTES = 64 * 1024  # what binary detection and format detection look at
BLOCK = 256 * 1024  # streaming block size for the encoding scan

_SUPPORTED = "CSV, TSV, JSON Lines, JSON array, Parquet or plain text"
_RESAVE = "Save it as UTF-8 (in Excel or WPS: Save As › “CSV UTF-8”) and upload it again."

_JSONL_EXTS = {".jsonl", ".ndjson", ".jsonlines"}
_JSON_EXTS = {".json"}
_CSV_EXTS = {".csv"}
_TSV_EXTS = {".tsv", ".tab"}
_PARQUET_EXTS = {".parquet", ".pq"}
_TEXT_EXTS = {".txt", ".text", ".md"}


class IngestError(Exception):
    """The file as a whole cannot be ingested. `code` is a stable slug, `message` user-facing.

    Codes: empty, binary, encoding, parse, header, no_rows, too_many_errors.
    """

    def __init__(self, code: str, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "line": self.line}


@dataclass(frozen=True)
class Sniffed:
    """format: one of FORMATS. encoding: "utf-8", "utf-16-le", "utf-16-be" or "gb18030" (Parquet
    strings are UTF-8 by specification). has_bom: the file starts with a byte-order mark."""

    format: str
    encoding: str
    has_bom: bool = False

    @property
    def codec(self) -> str:
        """The Python codec that reads the file, skipping the BOM if there is one."""
        if self.encoding == "utf-8":
            return "utf-8-sig" if self.has_bom else "utf-8"
        if self.encoding.startswith("utf-16"):
            return "utf-16"  # consumes the BOM and picks the byte order from it
        return self.encoding

    @property
    def delimiter(self) -> str:
        return "\t" if self.format == "tsv" else ","


def sniff(path: str | os.PathLike[str], filename: str) -> Sniffed:
    """Identify `path` (uploaded as `filename`) or raise IngestError."""
    path = Path(path)
    ext = Path(filename or "").suffix.lower()
    size = path.stat().st_size
    if size == 0:
        raise IngestError("empty", "The file is empty (0 bytes).")
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)

    if head.startswith(b"PAR1"):
        _check_parquet_footer(path, size)
        return Sniffed("parquet", "utf-8", False)

    encoding, bom = _bom(head)
    if encoding is None:
        _refuse_binary(head)
        encoding, has_content = _detect_encoding(path)
    else:
        has_content = _validate(path, encoding)
    sniffed = Sniffed("text", encoding, bom)
    if not has_content:
        raise IngestError("empty", "The file is empty: it contains only whitespace, no data.")

    decoder = codecs.getincrementaldecoder(sniffed.codec)("strict")
    sample = decoder.decode(head, final=size <= HEAD_BYTES)
    if bom:  # the byte-level test above was skipped (UTF-16 is full of NUL bytes)
        _refuse_binary_text(sample)
    return Sniffed(_detect_format(sample, size <= HEAD_BYTES, ext), encoding, bom)


# -- binary files ---------------------------------------------------------------------------------
_EXPORT_CSV = "export it as CSV (UTF-8) and upload that"
# (magic prefix, what it is, what to do). Checked before the generic NUL/control-byte test so the
# user hears what the file is, not just that it is "binary".
_SIGNATURES: list[tuple[bytes, str, str]] = [
    (b"PK\x03\x04", "a ZIP/Excel file (.zip, .xlsx)", _EXPORT_CSV + ", or unzip it first"),
    (b"PK\x05\x06", "an empty ZIP archive", "unzip it and upload the data file itself"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel/Word file (.xls, .doc)", _EXPORT_CSV),
    (b"\x1f\x8b", "a gzip-compressed file (.gz)", "decompress it and upload the data file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (.xz)", "decompress it and upload the data file"),
    (b"(\xb5/\xfd", "a zstd-compressed file (.zst)", "decompress it and upload the data file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it and upload the data file"),
    (b"Rar!\x1a\x07", "a RAR archive", "extract it and upload the data file"),
    (b"%PDF", "a PDF document", "extract the text or tables from it first"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "upload the data itself, not a picture of it"),
    (b"\xff\xd8\xff", "a JPEG image", "upload the data itself, not a picture of it"),
    (b"GIF87a", "a GIF image", "upload the data itself, not a picture of it"),
    (b"GIF89a", "a GIF image", "upload the data itself, not a picture of it"),
    (b"SQLite format 3\x00", "an SQLite database", _EXPORT_CSV),
    (b"ARROW1", "an Arrow/Feather file", "convert it to Parquet"),
    (b"\x93NUMPY", "a NumPy array file", "convert it to Parquet or JSON Lines"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file", "convert it to Parquet or JSON Lines"),
    (b"\x7fELF", "a program (ELF executable)", "upload a data file"),
]
# Bytes that do not occur in text: C0 controls except \t \n \v \f \r and ESC (ANSI colours in logs).
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
_CONTROL_CHARS = frozenset(_CONTROL_BYTES.decode("latin-1"))
_MAX_CONTROL_RATIO = 0.05


def _binary_error(what: str, advice: str) -> IngestError:
    return IngestError(
        "binary",
        f"This looks like {what}, not a text data file; {advice}. Hearth reads {_SUPPORTED} files.",
    )


def _refuse_binary(head: bytes) -> None:
    for magic, what, advice in _SIGNATURES:
        if head.startswith(magic):
            if magic == b"PK\x03\x04":
                # Office documents are ZIP files; their member names say which application.
                if b"xl/" in head:
                    what = "an Excel workbook (.xlsx), i.e. a ZIP/Excel file"
                elif b"word/" in head:
                    what, advice = "a Word document (.docx)", "extract the text or tables first"
            raise _binary_error(what, advice)
    if head[:4] in (b"RIFF",) and head[8:12] == b"WEBP":
        raise _binary_error("a WebP image", "upload the data itself, not a picture of it")
    if b"\x00" in head:
        # ASCII-heavy UTF-16 without a BOM has a NUL in every other byte: say so, it is fixable.
        even, odd = head[0::2], head[1::2]
        if (odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even)) or (
            even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd)
        ):
            raise IngestError(
                "encoding",
                "The file looks like UTF-16 text without a byte-order mark, which cannot be "
                f"read reliably. {_RESAVE}",
            )
        raise IngestError(
            "binary",
            "The file contains binary data (NUL bytes), so it is not a text data file. "
            f"Hearth reads {_SUPPORTED} files.",
        )
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if controls > _MAX_CONTROL_RATIO * len(head):
        raise IngestError(
            "binary",
            "The file contains many control characters, so it is not a text data file. "
            f"Hearth reads {_SUPPORTED} files.",
        )


def _refuse_binary_text(sample: str) -> None:
    """The same test on decoded UTF-16 text, where NUL bytes are normal but NUL chars are not."""
    controls = sum(1 for ch in sample if ch in _CONTROL_CHARS)
    if "\x00" in sample or controls > _MAX_CONTROL_RATIO * max(len(sample), 1):
        raise IngestError(
            "binary",
            f"The file contains binary data, so it is not a text data file. "
            f"Hearth reads {_SUPPORTED} files.",
        )


def _check_parquet_footer(path: Path, size: int) -> None:
    # A Parquet file ends with its metadata and the magic again; without it the upload was cut.
    with open(path, "rb") as f:
        f.seek(max(size - 4, 0))
        tail = f.read(4)
    if size < 12 or tail != b"PAR1":
        raise IngestError(
            "parse",
            "The file starts like a Parquet file but its end is missing: the upload or the "
            "export was probably cut short. Export it again.",
        )


# -- encodings ------------------------------------------------------------------------------------
def _bom(head: bytes) -> tuple[str | None, bool]:
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise IngestError(
            "encoding", f"The file is UTF-32 encoded, which is not supported. {_RESAVE}"
        )
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", True
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", True
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", True
    return None, False


@dataclass
class _Scan:
    ok: bool
    has_content: bool  # anything but whitespace
    error_line: int = 0  # 1-based line of the first undecodable byte
    wide_before_error: int = 0  # characters >= U+0800 decoded before the error (capped)


# Characters of 3+ UTF-8 bytes (CJK among them). A run of them decoding cleanly as UTF-8 is a
# near-certain sign the file *is* UTF-8: GBK bytes form such sequences only by rare accident.
_WIDE = re.compile("[\u0800-\U0010ffff]")
_WIDE_PROOF = 3


def _count_wide(text: str, enough: int) -> int:
    if text.isascii():
        return 0
    count = 0
    for _ in _WIDE.finditer(text):
        count += 1
        if count >= enough:
            break
    return count


def _scan(path: Path, codec: str, *, count_wide: bool = False) -> _Scan:
    """Stream-decode the whole file strictly. Line numbers count "\\n"."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    newlines = 0
    has_content = False
    wide = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK)
            final = not block
            try:
                text = decoder.decode(block, final)
            except UnicodeDecodeError as err:
                # err.object is the decoder's pending bytes + this block; pending bytes are an
                # incomplete character, never a newline, so counting in the prefix is exact.
                before = err.object[: err.start]
                if codec.startswith("utf-16"):
                    base = "utf-16-be" if before.startswith(codecs.BOM_UTF16_BE) else "utf-16-le"
                    count = before.decode(base, "replace").count("\n")
                else:
                    count = before.count(b"\n")
                if count_wide and wide < _WIDE_PROOF:
                    wide += _count_wide(before.decode(codec, "ignore"), _WIDE_PROOF - wide)
                return _Scan(False, has_content, newlines + count + 1, wide)
            newlines += text.count("\n")
            if not has_content and text.strip():
                has_content = True
            if count_wide and wide < _WIDE_PROOF:
                wide += _count_wide(text, _WIDE_PROOF - wide)
            if final:
                return _Scan(True, has_content, wide_before_error=wide)


def _detect_encoding(path: Path) -> tuple[str, bool]:
    """UTF-8 if the whole file is strictly UTF-8, else GB18030 if it is strictly that."""
    utf8 = _scan(path, "utf-8", count_wide=True)
    if utf8.ok:
        return "utf-8", utf8.has_content
    if utf8.wide_before_error >= _WIDE_PROOF:
        # Clean UTF-8 text up to this line: GB18030 would "succeed" by turning it to mojibake.
        raise IngestError(
            "encoding",
            f"Line {utf8.error_line} is not UTF-8 like the lines before it: the file mixes "
            "text encodings (for example UTF-8 and GBK) or is damaged. " + _RESAVE,
            line=utf8.error_line,
        )
    gb = _scan(path, "gb18030")
    if gb.ok:
        return "gb18030", gb.has_content
    # Report the line where the decoder that got further stopped: before it, all was readable.
    line = max(utf8.error_line, gb.error_line)
    raise IngestError(
        "encoding",
        f"The text cannot be decoded: line {line} is neither UTF-8 nor GBK/GB18030. Hearth "
        "reads UTF-8 (with or without BOM), UTF-16 with BOM and GBK/GB18030. " + _RESAVE,
        line=line,
    )


def _validate(path: Path, encoding: str) -> bool:
    codec = Sniffed("text", encoding, True).codec
    scan = _scan(path, codec)
    if not scan.ok:
        name = "UTF-8" if encoding == "utf-8" else "UTF-16"
        raise IngestError(
            "encoding",
            f"The file starts with a {name} byte-order mark, but line {scan.error_line} is not "
            f"valid {name}: the file is damaged or mixes encodings. {_RESAVE}",
            line=scan.error_line,
        )
    return scan.has_content


# -- formats --------------------------------------------------------------------------------------
def _detect_format(sample: str, complete: bool, ext: str) -> str:
    """`sample`: the decoded start of the file; `complete`: it is the whole file."""
    stripped = sample.lstrip()
    first = stripped[:1]
    if first == "[" and (ext in _JSON_EXTS | _JSONL_EXTS or _looks_like_json_array(stripped)):
        return "json"
    if first == "{":
        if _looks_like_jsonl(sample, complete):
            return "jsonl"
        if ext not in _TEXT_EXTS:
            raise IngestError(
                "parse",
                "The file starts with “{” but is not JSON Lines: its lines are not complete JSON "
                "objects. It may be one JSON document spread over many lines. Upload JSON Lines "
                "(one object per line) or a JSON array ([{…}, {…}]).",
            )
        return "text"
    if ext in _JSON_EXTS | _JSONL_EXTS:
        raise IngestError(
            "parse",
            f"The file is named “{ext}” but its content is not JSON: it should start with “[” "
            "(a JSON array) or “{” (JSON Lines).",
        )
    if ext in _PARQUET_EXTS:
        raise IngestError(
            "parse",
            f"The file is named “{ext}” but is not a Parquet file (it lacks the PAR1 signature).",
        )
    table = _table_format(sample, complete, ext)
    if table:
        return table
    if ext in _TSV_EXTS:
        return "tsv"
    if ext in _CSV_EXTS:
        return "csv"  # a one-column CSV is still a CSV
    return "text"


def _looks_like_json_array(stripped: str) -> bool:
    # "[{" / "[]" / '["' / "[[" are JSON; "[INFO] started" is a log line, i.e. text.
    rest = stripped[1:].lstrip()
    return not rest or rest[0] in '{["]'


def _complete_lines(sample: str, complete: bool) -> list[str]:
    lines = sample.split("\n")
    if not complete:
        lines.pop()  # cut mid-line by the sample size
    return lines


def _looks_like_jsonl(sample: str, complete: bool) -> bool:
    lines = [line for line in _complete_lines(sample, complete) if line.strip()][:50]
    if not lines:
        return True  # the first record is longer than the sample: let the reader judge it

    def is_object(line: str) -> bool:
        try:
            return isinstance(json.loads(line), dict)
        except ValueError:
            return False

    if is_object(lines[0]):
        return True
    # A broken first line in real JSON Lines, or a pretty-printed document (few lines parse)?
    return sum(map(is_object, lines)) * 2 > len(lines)


_SNIFF_CHARS = 16 * 1024  # csv.Sniffer is slow on big samples


def _table_format(sample: str, complete: bool, ext: str) -> str | None:
    if not complete and "\n" in sample:
        sample = sample[: sample.rfind("\n") + 1]
    try:
        guess: str | None = csv.Sniffer().sniff(sample[:_SNIFF_CHARS], delimiters=",\t").delimiter
    except csv.Error:
        guess = None
    candidates = [guess] if guess else []
    candidates += [d for d in ("\t", ",") if d not in candidates]
    for delimiter in candidates:
        # Prose can hold commas and tabs: without a .csv/.tsv name, ask for data rows that agree
        # with the header, and more of them for commas in a file named .txt.
        if ext in _CSV_EXTS | _TSV_EXTS:
            min_rows = 0
        elif ext in _TEXT_EXTS and delimiter == ",":
            min_rows = 3
        else:
            min_rows = 1
        if _is_consistent_table(sample, delimiter, complete, min_rows):
            return "tsv" if delimiter == "\t" else "csv"
    return None


def _is_consistent_table(sample: str, delimiter: str, complete: bool, min_rows: int) -> bool:
    try:
        rows = [row for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row]
    except csv.Error:
        return False
    if not complete and len(rows) > 1:
        rows.pop()  # may be a quoted multi-line field cut by the sample
    if not rows:
        return False
    header, data = rows[0], rows[1:201]
    # A header names columns: at least two, short names (prose split at commas is not).
    if len(header) < 2 or any(len(name) > 128 for name in header):
        return False
    if len(data) < min_rows:
        return False
    matching = sum(1 for row in data if len(row) == len(header))
    return matching >= 0.9 * len(data)
