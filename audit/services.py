"""The one way to write the audit trail. Every feature calls `record` (or `record_denied`).

Events are appended to the hash chain (audit.chain) inside the caller's transaction: a change
that rolls back leaves no event. Denials are the exception: a denied request usually ends in an
exception, which rolls back whatever transaction it was in (ATOMIC_REQUESTS, DRF's
`set_rollback`, a service's atomic block), and the denial must survive that. Inside a request or
a task (a "denial scope"), a denial raised inside a transaction is therefore written after that
transaction ends, committed or not: on commit through `on_commit`, on rollback when the scope
closes (Django has no on_rollback hook).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import connections, models, transaction
from django.utils import timezone

from . import chain, context
from .models import AuditEvent
from .retention import audit_archive_expired, verify_archives  # noqa: F401  (service API)
from .verification import VerifyResult, audit_verify

logger = logging.getLogger(__name__)


def _object_fields(obj: Any) -> dict[str, str]:
    if obj is None:
        return {}
    if isinstance(obj, models.Model):
        return {
            "object_type": obj._meta.label_lower,
            "object_id": str(obj.pk or ""),
            "object_repr": str(obj)[:200],
        }
    raise TypeError("audit objects are model instances; pass object_type/object_id instead")


# -- denials that outlive a rollback ----------------------------------------------------------
@dataclass
class _Deferred:
    fields: dict[str, Any]
    written: bool = False


_deferred: ContextVar[list[_Deferred] | None] = ContextVar("hearth_audit_deferred", default=None)


def open_denial_scope() -> Token:
    """Start a scope (a request, a task) whose denials are written even if its transactions
    roll back. Close it with `close_denial_scope` in a `finally`."""
    return _deferred.set([])


def close_denial_scope(token: Token) -> None:
    try:
        flush_deferred_denials()
    finally:
        _deferred.reset(token)


def flush_deferred_denials() -> int:
    """Write the scope's denials that no commit has written yet. Returns how many."""
    pending = _deferred.get() or []
    written = 0
    while pending:
        item = pending.pop(0)
        if item.written:
            continue
        try:
            _write_deferred(item)
            written += 1
        except Exception:
            # Never turn a 403 into a 500; the log line keeps the denial.
            logger.exception("could not record a permission denial: %s", item.fields)
    return written


def _write_deferred(item: _Deferred) -> None:
    if not item.written:
        chain.append(item.fields)
        item.written = True


def _in_transaction(using: str = "default") -> bool:
    """Inside an atomic block of the application's. The blocks that Django's TestCase (and so
    pytest-django's `db`) wraps each test in are marked `_from_testcase`, and do not count: they
    never commit, and events written inside them are what a test reads back."""
    return any(
        not getattr(block, "_from_testcase", False) for block in connections[using].atomic_blocks
    )


# -- writing ----------------------------------------------------------------------------------
def record(
    *,
    action: str,
    actor=None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    outcome: str = AuditEvent.Outcome.ALLOWED,
    details: dict[str, Any] | None = None,
    actor_username: str = "",
) -> AuditEvent:
    """Append one audit event.

    Request id, client IP and user agent come from the current request (or the Celery task that a
    request caused); the caller names the action, the actor and the object. A denial inside a
    transaction, within a request or task, is written once that transaction ends (see the module
    docstring): the returned event is then not saved yet.
    """
    ctx = context.current()
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    fields: dict[str, Any] = {
        "created_at": timezone.now(),
        "action": action,
        "actor": actor if authenticated else None,
        "actor_username": (actor.get_username() if authenticated else actor_username)[:150],
        "ip": ctx.ip if ctx else None,
        "user_agent": ctx.user_agent if ctx else "",
        "request_id": ctx.request_id if ctx else "",
        "outcome": outcome,
        "details": details or {},
        "object_type": object_type,
        "object_id": str(object_id),
        "object_repr": object_repr[:200],
        **_object_fields(obj),
    }
    if outcome == AuditEvent.Outcome.DENIED:
        pending = _deferred.get()
        if pending is not None and _in_transaction():
            item = _Deferred(fields)
            pending.append(item)
            transaction.on_commit(partial(_write_deferred, item), robust=True)
            return AuditEvent(**fields)
    return chain.append(fields)


def record_denied(
    *,
    actor,
    model: type[models.Model],
    action: str,
    obj: models.Model | None = None,
    object_id: str | int = "",
    reason: str = "",
) -> AuditEvent:
    """A permission denial: an invisible object (answered 404) or a forbidden action (403).
    Recorded even when the transaction around it rolls back."""
    return record(
        action=f"{model._meta.label_lower}.{action}",
        actor=actor,
        obj=obj,
        object_type=model._meta.label_lower,
        object_id=object_id,
        outcome=AuditEvent.Outcome.DENIED,
        details={"reason": reason} if reason else None,
    )


def audit_verify_recorded(*, actor, archives: bool = False) -> VerifyResult:
    """Verify the chain for a person (the API, the audit page) and record that they did, with
    the result: a failed verification is an `error` event naming the first broken link."""
    result = audit_verify(archives=archives)
    record(
        action="audit.verify",
        actor=actor,
        outcome=AuditEvent.Outcome.ALLOWED if result.ok else AuditEvent.Outcome.ERROR,
        details={
            "ok": result.ok,
            "checked": result.checked,
            "broken": result.as_dict()["broken"],
            "archives": archives,
        },
    )
    return result
