"""The audit trail's hash chain: each event's link is HMAC-SHA256(audit key, canonical fields +
previous link).

Keyed, not a plain SHA-256: someone with write access to the database, but not to the key
(environment or key file), can change rows but cannot recompute the links after them.

The canonical form is part of the stored data's meaning: changing it (fields, order, encoding)
breaks verification of every existing event, so it carries a version tag.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connections, transaction
from django.utils.ipv6 import clean_ipv6_address

from .models import AuditChainHead, AuditCheckpoint, AuditEvent

GENESIS = "0" * 64
MIN_KEY_LENGTH = 32
_VERSION = b"hearth-audit-v1\n"
_CHECKPOINT_VERSION = b"hearth-audit-checkpoint-v1\n"
_HEAD_PK = 1

# The fields a link covers. Not `id` (the database assigns it after the hash is computed), not
# `position` (the chain of links fixes the order; leaving it out lets verification tell a moved
# event from a changed one) and not `actor` (set to NULL when the user is deleted;
# `actor_username` is the copy that the link covers).
CHAINED_FIELDS = (
    "created_at",
    "actor_username",
    "ip",
    "user_agent",
    "request_id",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "outcome",
    "details",
)


# -- the key ----------------------------------------------------------------------------------
def audit_key() -> bytes:
    """The HMAC key: HEARTH_AUDIT_KEY, else the first line of HEARTH_AUDIT_KEY_FILE."""
    return _load_key(
        getattr(settings, "HEARTH_AUDIT_KEY", ""), getattr(settings, "HEARTH_AUDIT_KEY_FILE", "")
    )


@lru_cache(maxsize=4)
def _load_key(value: str, path: str) -> bytes:
    # Cached per (value, path): appends are hot, the key file does not change under a process.
    if not value and path:
        try:
            value = Path(path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ImproperlyConfigured(f"cannot read HEARTH_AUDIT_KEY_FILE {path}: {exc}") from exc
    if not value:
        raise ImproperlyConfigured("Set HEARTH_AUDIT_KEY or HEARTH_AUDIT_KEY_FILE.")
    if len(value) < MIN_KEY_LENGTH:
        raise ImproperlyConfigured(
            f"The audit key must be a random value of {MIN_KEY_LENGTH}+ characters."
        )
    return value.encode()


# -- canonical form and links -----------------------------------------------------------------
def _normal_json(value: Any) -> Any:
    """JSON values as every backend returns them: PostgreSQL's jsonb turns 1e20 into an integer
    and keeps 1.0, SQLite keeps both as written; integral floats become ints on both sides."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normal_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal_json(v) for v in value]
    return value


def timestamp(value: datetime | str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """Sorted-key compact JSON (UTF-8) of the chained fields; times in UTC ISO 8601."""
    ip = fields.get("ip") or None
    if ip and ":" in ip:
        ip = clean_ipv6_address(ip)  # as GenericIPAddressField stores it
    data = {name: fields.get(name) for name in CHAINED_FIELDS}
    data["created_at"] = timestamp(fields["created_at"])
    data["ip"] = ip
    data["details"] = _normal_json(fields.get("details") or {})
    object_id = fields.get("object_id")
    data["object_id"] = "" if object_id is None else str(object_id)
    return json.dumps(
        data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode()


def link(fields: Mapping[str, Any], prev_hash: str, key: bytes | None = None) -> str:
    message = _VERSION + prev_hash.encode() + b"\n" + canonical(fields)
    return hmac.new(key or audit_key(), message, hashlib.sha256).hexdigest()


def event_fields(event: Any) -> dict[str, Any]:
    """The chained fields of an AuditEvent (or of a row with the same attribute names)."""
    return {name: getattr(event, name) for name in CHAINED_FIELDS}


def checkpoint_mac(checkpoint: AuditCheckpoint, key: bytes | None = None) -> str:
    data = {
        "archive_name": checkpoint.archive_name,
        "count": checkpoint.count,
        "created_at": timestamp(checkpoint.created_at),
        "first_position": checkpoint.first_position,
        "first_prev_hash": checkpoint.first_prev_hash,
        "last_hash": checkpoint.last_hash,
        "last_position": checkpoint.last_position,
        "plaintext_sha256": checkpoint.plaintext_sha256,
    }
    message = _CHECKPOINT_VERSION + json.dumps(data, sort_keys=True).encode()
    return hmac.new(key or audit_key(), message, hashlib.sha256).hexdigest()


# -- appending --------------------------------------------------------------------------------
def chain_start(using: str = "default") -> tuple[int, str]:
    """(first position, link before it) of the events still in the table: after the last
    retention checkpoint, or the start of the chain."""
    last = AuditCheckpoint.objects.using(using).order_by("-last_position").first()
    if last is None:
        return 1, GENESIS
    return last.last_position + 1, last.last_hash


def _locked_head(using: str) -> AuditChainHead:
    head = AuditChainHead.objects.using(using).select_for_update().filter(pk=_HEAD_PK).first()
    if head is not None:
        return head
    # First append (or a flushed test database): start from the newest event or checkpoint,
    # never from zero, so a lost head row cannot fork the chain.
    newest = AuditEvent.objects.using(using).order_by("-position").first()
    if newest is not None:
        position, last_hash = newest.position, newest.hash
    else:
        start, last_hash = chain_start(using)
        position = start - 1
    try:
        with transaction.atomic(using=using):  # a savepoint: a racing creator may win
            AuditChainHead.objects.using(using).create(
                pk=_HEAD_PK, position=position, hash=last_hash
            )
    except IntegrityError:
        pass
    return AuditChainHead.objects.using(using).select_for_update().get(pk=_HEAD_PK)


def _head_sql(connection) -> str:
    """One round trip: the locked head, and the newest position beyond it (normally none)."""
    ops = connection.ops
    head = ops.quote_name(AuditChainHead._meta.db_table)
    events = ops.quote_name(AuditEvent._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (
        f"SELECT h.position, h.hash, (SELECT MAX(e.position) FROM {events} e "  # noqa: S608
        f"WHERE e.position > h.position) FROM {head} h WHERE h.id = %s{lock}"
    )


# Every column but the id, in model order; values prepared by each field for the backend.
_INSERT_FIELDS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]


def _insert_and_move_head(connection, event: AuditEvent) -> int:
    """Insert the event and point the head at it; returns the event's id. One round trip on
    PostgreSQL (a data-modifying CTE), two elsewhere."""
    ops = connection.ops
    table = ops.quote_name(AuditEvent._meta.db_table)
    head = ops.quote_name(AuditChainHead._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column) for f in _INSERT_FIELDS)
    marks = ", ".join(["%s"] * len(_INSERT_FIELDS))
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in _INSERT_FIELDS]
    insert = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
    move = f"UPDATE {head} SET position = %s, hash = %s WHERE id = %s"  # noqa: S608
    head_values = [event.position, event.hash, _HEAD_PK]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH inserted AS ({insert} RETURNING id) {move} "  # noqa: S608
                "RETURNING (SELECT id FROM inserted)",
                values + head_values,
            )
            return cursor.fetchone()[0]
        cursor.execute(insert, values)
        pk = ops.last_insert_id(cursor, AuditEvent._meta.db_table, "id")
        cursor.execute(move, head_values)
        return pk


def append(fields: dict[str, Any], *, using: str = "default") -> AuditEvent:
    """Write one event at the end of the chain, inside the caller's transaction if there is one
    (a rolled-back change leaves no event and no gap) or in a transaction of its own.

    The head row stays locked until that transaction ends: appends are serialised, on
    PostgreSQL by the row lock, on SQLite by its single writer.

    Plain SQL, two round trips on PostgreSQL: this runs on every audited request, and the ORM's
    query building cost more than the queries themselves (bench/audit_overhead.py).
    """
    key = audit_key()  # before any query: a missing key fails loudly, not half-way
    connection = connections[using]
    # No savepoint inside an outer transaction: an append that fails must fail that
    # transaction too, or its change would commit without its audit record.
    with transaction.atomic(using=using, savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(_head_sql(connection), [_HEAD_PK])
            row = cursor.fetchone()
        if row is None:
            head = _locked_head(using)
            row = (head.position, head.hash, None)
        head_position, head_hash, beyond = row
        # Normally the head is the newest event. A row that someone put beyond it must not
        # block every audited action (the unique position would refuse ours): append after it,
        # linked to the head; verification reports the intruder as inserted.
        position = max(head_position, beyond or 0) + 1
        event = AuditEvent(**fields, position=position, prev_hash=head_hash)
        if event.ip and ":" in event.ip:
            event.ip = clean_ipv6_address(event.ip)
        event.hash = link(event_fields(event), event.prev_hash, key)
        event.pk = _insert_and_move_head(connection, event)
        event._state.adding = False
        event._state.db = using
    return event
