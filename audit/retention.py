"""Retention: events older than HEARTH_AUDIT_RETENTION_DAYS move, in chain order, to encrypted
JSON Lines archives (the datasets' AES-256-GCM format, under the master key) in
HEARTH_AUDIT_ARCHIVE_DIR; a keyed checkpoint row records where the chain was cut, so the rest
still verifies; then, and only then, the archived rows are deleted.

Archive file (plaintext, UTF-8): a header line {"format": "hearth-audit-archive", "version": 1,
"first_position", "last_position", "first_prev_hash"}, then one event per line, every field
including its position and links, so `audit_verify --archives` re-checks the chain in the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from datasets_app.crypto import (
    DecryptionError,
    EncryptedWriter,
    KeyStoreError,
    keystore_from_settings,
    open_decrypted,
)

from . import chain
from .models import AuditCheckpoint, AuditEvent
from .verification import ArchiveResult, WalkState, walk

MIN_RETENTION_DAYS = 180
ARCHIVE_FORMAT = "hearth-audit-archive"
_NAME = re.compile(r"^audit-\d{12}-\d{12}-\d{8}T\d{6}Z\.jsonl\.hrth$")
_COLUMNS = ("id", "position", "actor_id", "prev_hash", "hash", *chain.CHAINED_FIELDS)


class ArchiveRefused(Exception):
    """The events to archive do not verify: they are kept, as evidence, for a person to look at."""


def validate_retention_days(days: int) -> int:
    if days < MIN_RETENTION_DAYS:
        raise ImproperlyConfigured(
            f"HEARTH_AUDIT_RETENTION_DAYS must be at least {MIN_RETENTION_DAYS} (got {days})."
        )
    return days


def archive_dir() -> Path:
    return Path(settings.HEARTH_AUDIT_ARCHIVE_DIR)


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True).encode() + b"\n"


def _event_line(row: Any) -> bytes:
    data = {name: getattr(row, name) for name in _COLUMNS}
    data["created_at"] = chain.timestamp(row.created_at)
    return _line(data)


def _write_archive(path: Path, first: int, last: int, prev_hash: str) -> tuple[str, int, str]:
    """Stream events first..last into a new encrypted file at `path`, checking their chain on
    the way. Returns (plaintext sha256, count, last link). Nothing is left behind on failure."""
    key = chain.audit_key()
    rows = (
        AuditEvent.objects.filter(position__gte=first, position__lte=last)
        .order_by("position")
        .values_list(*_COLUMNS, named=True)
        .iterator(chunk_size=2000)
    )
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            with EncryptedWriter(raw, keystore_from_settings()) as writer:
                header = {
                    "format": ARCHIVE_FORMAT,
                    "version": 1,
                    "first_position": first,
                    "last_position": last,
                    "first_prev_hash": prev_hash,
                }
                writer.write(_line(header))
                state = WalkState(position=first, prev_hash=prev_hash)

                def written() -> Iterator[Any]:
                    for row in rows:
                        writer.write(_event_line(row))
                        yield row

                broken = walk(
                    written(),
                    state,
                    key=key,
                    hash_exists=lambda value: False,
                    head_position=last,
                )
                if broken is not None or state.position != last + 1:
                    where = broken or f"the events end at position {state.position - 1}"
                    raise ArchiveRefused(f"the chain does not verify: {where}")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return writer.sha256, state.checked, state.prev_hash


def _delete_archived(first: int, last: int) -> int:
    """The one place audit events are deleted: raw SQL, on purpose past the model's refusal,
    and only for a range that a checkpoint in the same transaction covers."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE position >= %s AND position <= %s",  # noqa: S608
            [first, last],
        )
        return cursor.rowcount


def _archive_range(first: int, last: int, prev_hash: str, now: datetime) -> AuditCheckpoint:
    from .services import record  # services imports this module

    folder = archive_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"audit-{first:012d}-{last:012d}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.jsonl.hrth"
    path = folder / name
    sha256, count, last_hash = _write_archive(path, first, last, prev_hash)
    try:
        with transaction.atomic():
            chain._locked_head("default")  # serialises with appends and with another archiver
            if chain.chain_start() != (first, prev_hash):
                raise ArchiveRefused("another archiver moved the chain start")
            checkpoint = AuditCheckpoint(
                created_at=now,
                archive_name=name,
                first_position=first,
                last_position=last,
                first_prev_hash=prev_hash,
                last_hash=last_hash,
                plaintext_sha256=sha256,
                count=count,
            )
            checkpoint.mac = chain.checkpoint_mac(checkpoint)
            checkpoint.save(force_insert=True)
            deleted = _delete_archived(first, last)
            if deleted != count:
                raise ArchiveRefused(f"{deleted} events deleted, {count} archived")
            record(
                action="audit.archive",
                obj=checkpoint,
                details={
                    "first_position": first,
                    "last_position": last,
                    "count": count,
                    "sha256": sha256,
                },
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return checkpoint


def audit_archive_expired(
    *, now: datetime | None = None, batch_size: int = 50_000
) -> list[AuditCheckpoint]:
    """Archive and delete the events past retention, oldest first, in archives of at most
    `batch_size` events. Only a prefix of the chain is ever cut: the first event still within
    retention, and everything after it, stays."""
    days = validate_retention_days(settings.HEARTH_AUDIT_RETENTION_DAYS)
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    checkpoints = []
    # Never beyond the chain as it is now: each archive appends an `audit.archive` event, which
    # must not count as one more event to archive (with a cutoff in the future, it would).
    newest = AuditEvent.objects.order_by("-position").values_list("position", flat=True)
    stop = newest.first() or 0
    kept = (
        AuditEvent.objects.filter(created_at__gte=cutoff, position__lte=stop)
        .order_by("position")
        .values_list("position", flat=True)
        .first()
    )
    end = stop if kept is None else kept - 1
    while True:
        first, prev_hash = chain.chain_start()
        last = min(end, first + batch_size - 1)
        if last < first:
            return checkpoints
        checkpoints.append(_archive_range(first, last, prev_hash, now))


# -- verifying archives -----------------------------------------------------------------------
def _archive_lines(path: Path, digest: Any) -> Iterator[bytes]:
    with open_decrypted(path, keystore_from_settings()) as reader:
        rest = b""
        for chunk in reader.iter_chunks():
            digest.update(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def verify_archive(checkpoint: AuditCheckpoint) -> ArchiveResult:
    """Decrypt one archive and check it against its checkpoint: header, the chain of its
    events from the checkpoint's first link to its last, their count and the plaintext's
    SHA-256."""

    def result(ok: bool, checked: int, message: str = "") -> ArchiveResult:
        return ArchiveResult(
            checkpoint.archive_name,
            checkpoint.first_position,
            checkpoint.last_position,
            ok,
            checked,
            message,
        )

    if not _NAME.fullmatch(checkpoint.archive_name):
        return result(False, 0, "the checkpoint names no archive file of ours")
    path = archive_dir() / checkpoint.archive_name
    if not path.is_file():
        return result(False, 0, f"archive file {path} is missing")
    if not hmac.compare_digest(chain.checkpoint_mac(checkpoint), checkpoint.mac):
        return result(False, 0, "the checkpoint was altered")
    digest = hashlib.sha256()
    state = WalkState(position=checkpoint.first_position, prev_hash=checkpoint.first_prev_hash)
    try:
        lines = _archive_lines(path, digest)
        header = json.loads(next(lines, b"{}"))
        expected = {
            "format": ARCHIVE_FORMAT,
            "version": 1,
            "first_position": checkpoint.first_position,
            "last_position": checkpoint.last_position,
            "first_prev_hash": checkpoint.first_prev_hash,
        }
        if header != expected:
            return result(False, 0, "the archive's header does not match its checkpoint")
        rows = (SimpleNamespace(**json.loads(line)) for line in lines)
        broken = walk(
            rows,
            state,
            key=chain.audit_key(),
            hash_exists=lambda value: False,
            head_position=checkpoint.last_position,
        )
        for _rest in lines:  # read to the end: the digest and the final chunk's tag
            pass
    except (DecryptionError, KeyStoreError, ValueError, TypeError, AttributeError, OSError) as exc:
        return result(False, state.checked, f"the archive cannot be read: {exc}")
    if broken is not None:
        return result(False, state.checked, f"{broken.reason} at {broken.position}")
    if (state.checked, state.prev_hash) != (checkpoint.count, checkpoint.last_hash):
        return result(False, state.checked, "the archive's events do not match its checkpoint")
    if digest.hexdigest() != checkpoint.plaintext_sha256:
        return result(False, state.checked, "the archive's SHA-256 does not match")
    return result(True, state.checked)


def verify_archives() -> list[ArchiveResult]:
    return [verify_archive(c) for c in AuditCheckpoint.objects.order_by("first_position")]
