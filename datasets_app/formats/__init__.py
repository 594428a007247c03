"""Reading uploaded dataset files (JSON Lines, JSON array, CSV, TSV, Parquet, text) into
normalised records, streaming. Django-free: processing jobs and workers import it directly.

    sniffed = sniff(path, filename)                      # or IngestError(code, message)
    for line, item in iter_records(path, sniffed): ...   # (line, dict) | (line, RowError)
    result = normalize(path, filename, out)              # JSONL to `out` + schema + row errors
"""

from .ingest import IngestResult, iter_jsonl, normalize, write_jsonl
from .readers import RecordOrError, RowError, iter_records
from .schema import SchemaBuilder, approx_tokens
from .sniff import FORMATS, IngestError, Sniffed, sniff

__all__ = [
    "FORMATS",
    "IngestError",
    "IngestResult",
    "RecordOrError",
    "RowError",
    "SchemaBuilder",
    "Sniffed",
    "approx_tokens",
    "iter_jsonl",
    "iter_records",
    "normalize",
    "sniff",
    "write_jsonl",
]
