"""Verify the hash chain: report the first broken link, streaming (constant memory).

How a break is named, walking the events in position order from the last retention checkpoint:

- missing: a gap in the positions, an unaltered event whose predecessor exists nowhere (removed
  and the positions closed up), or the chain head pointing past the last event (tail removed);
- out of order: an unaltered event whose predecessor exists elsewhere in the chain (moved);
- inserted: an event whose link does not verify while the chain continues around it (the next
  event links to the one before it), an event beyond the chain head, or one at a position that
  retention already archived;
- altered: an event whose link does not verify otherwise (its contents changed), a checkpoint
  whose MAC does not verify, or a chain head that disagrees with the last event.

Limits: an attacker who deletes the newest events and also rewinds the chain head to an older,
genuine link is not detected by the chain alone; compare the head printed by `audit_verify` with
a copy kept elsewhere (e.g. a log shipped off the machine) to catch that.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from . import chain
from .models import AuditChainHead, AuditCheckpoint, AuditEvent

ALTERED, MISSING, INSERTED, OUT_OF_ORDER = "altered", "missing", "inserted", "out of order"
REASON_LABELS = {
    ALTERED: _("altered"),
    MISSING: _("missing"),
    INSERTED: _("inserted"),
    OUT_OF_ORDER: _("out of order"),
}
_ROW_FIELDS = ("id", "position", "prev_hash", "hash", *chain.CHAINED_FIELDS)


@dataclass(frozen=True)
class BrokenLink:
    position: int
    event_id: int | None
    reason: str
    message: str


@dataclass(frozen=True)
class ArchiveResult:
    archive_name: str
    first_position: int
    last_position: int
    ok: bool
    checked: int
    message: str = ""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    start_position: int
    head_position: int | None
    head_hash: str
    broken: BrokenLink | None = None
    archives: list[ArchiveResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WalkState:
    position: int  # the next position expected
    prev_hash: str  # the link the next event must carry as prev_hash
    checked: int = 0


def walk(
    rows: Iterable[Any],
    state: WalkState,
    *,
    key: bytes,
    hash_exists: Callable[[str], bool],
    head_position: int | None,
) -> BrokenLink | None:
    """Check `rows` (position order; attributes as AuditEvent's) against `state`, advancing it.

    Looks one row ahead, to tell an inserted event (the chain continues around it) from an
    altered one; nothing else is kept in memory.
    """
    rows = iter(rows)
    row = next(rows, None)
    while row is not None:
        following = next(rows, None)
        if row.position != state.position:
            if row.position > state.position:
                return BrokenLink(
                    state.position,
                    row.id,
                    MISSING,
                    f"events at positions {state.position}–{row.position - 1} are missing",
                )
            return BrokenLink(row.position, row.id, INSERTED, "a second event at this position")
        expected = chain.link(chain.event_fields(row), row.prev_hash, key)
        genuine = hmac.compare_digest(expected, row.hash)
        if genuine and row.prev_hash == state.prev_hash:
            state.checked += 1
            state.position += 1
            state.prev_hash = row.hash
            row = following
            continue
        if genuine:
            if hash_exists(row.prev_hash):
                return BrokenLink(
                    row.position,
                    row.id,
                    OUT_OF_ORDER,
                    "an unaltered event in the wrong place: its predecessor is elsewhere",
                )
            return BrokenLink(
                row.position, row.id, MISSING, "the event before this one was removed"
            )
        continues_around = following is not None and following.prev_hash == state.prev_hash
        beyond_head = following is None and head_position is not None
        if continues_around or (beyond_head and row.position > head_position):
            return BrokenLink(
                row.position, row.id, INSERTED, "an event that Hearth did not write here"
            )
        return BrokenLink(
            row.position, row.id, ALTERED, "the event's contents no longer match its link"
        )
    return None


def _checkpoints(key: bytes) -> tuple[WalkState, BrokenLink | None]:
    """The chain position after the last checkpoint, checking that checkpoints are genuine
    and follow each other without gaps."""
    state = WalkState(position=1, prev_hash=chain.GENESIS)
    for checkpoint in AuditCheckpoint.objects.order_by("first_position").iterator():
        if not hmac.compare_digest(chain.checkpoint_mac(checkpoint, key), checkpoint.mac):
            return state, BrokenLink(
                checkpoint.first_position,
                None,
                ALTERED,
                f"retention checkpoint {checkpoint.archive_name} was altered",
            )
        if (checkpoint.first_position, checkpoint.first_prev_hash) != (
            state.position,
            state.prev_hash,
        ):
            return state, BrokenLink(
                state.position,
                None,
                MISSING,
                f"retention checkpoint {checkpoint.archive_name} does not follow the one before",
            )
        state = WalkState(position=checkpoint.last_position + 1, prev_hash=checkpoint.last_hash)
    return state, None


def _event_rows(start: int, end: int | None, chunk_size: int) -> Iterator[Any]:
    rows = AuditEvent.objects.filter(position__gte=start)
    if end is not None:
        rows = rows.filter(position__lte=end)
    return iter(
        rows.order_by("position").values_list(*_ROW_FIELDS, named=True).iterator(chunk_size)
    )


def _latest_checkpoint() -> int | None:
    return AuditCheckpoint.objects.order_by("-last_position").values_list("pk", flat=True).first()


def audit_verify(*, archives: bool = False, chunk_size: int = 2000) -> VerifyResult:
    """Verify the chain in the database (and, with `archives`, every retention archive file
    against its checkpoint). Reports the first broken link."""
    checkpoint = _latest_checkpoint()
    result = _verify(archives=archives, chunk_size=chunk_size)
    if not result.ok and _latest_checkpoint() != checkpoint:
        # Retention archived (and deleted) events while we read: once more, from its checkpoint.
        result = _verify(archives=archives, chunk_size=chunk_size)
    return result


def _verify(*, archives: bool, chunk_size: int) -> VerifyResult:
    key = chain.audit_key()
    # Verify up to the head as it is now; events appended while we read are checked next time.
    head = AuditChainHead.objects.first()
    head_position = head.position if head else None
    state, broken = _checkpoints(key)
    start = state.position
    archive_results: list[ArchiveResult] = []
    if archives:
        from .retention import verify_archives

        archive_results = verify_archives()

    def result(broken: BrokenLink | None) -> VerifyResult:
        ok = broken is None and all(a.ok for a in archive_results)
        return VerifyResult(
            ok,
            state.checked,
            start,
            head_position,
            head.hash if head else "",
            broken,
            archive_results,
        )

    if broken:
        return result(broken)
    stray = AuditEvent.objects.filter(position__lt=start).order_by("position").first()
    if stray is not None:
        return result(
            BrokenLink(stray.position, stray.pk, INSERTED, "an event at an archived position")
        )
    broken = walk(
        _event_rows(start, head_position, chunk_size),
        state,
        key=key,
        hash_exists=lambda value: AuditEvent.objects.filter(hash=value).exists(),
        head_position=head_position,
    )
    if broken or head is None:
        return result(broken)
    last = state.position - 1
    if head.position > last:
        return result(
            BrokenLink(
                state.position,
                None,
                MISSING,
                f"the newest events (positions {state.position}–{head.position}) were removed",
            )
        )
    if head.hash != state.prev_hash:
        return result(BrokenLink(last, None, ALTERED, "the chain head was changed"))
    beyond = AuditEvent.objects.filter(position__gt=head.position).order_by("position").first()
    if beyond is not None:
        now = AuditChainHead.objects.first()
        if now is None or beyond.position > now.position:
            return result(
                BrokenLink(beyond.position, beyond.pk, INSERTED, "an event beyond the chain head")
            )
    return result(None)
