"""Per-request context (request id, client address) that audit records pick up.

A ContextVar, not a thread-local: it is correct under threads, asyncio and Celery alike, and the
middleware resets it in `finally` so a request never leaks its id into the next one.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip: str | None = None
    user_agent: str = ""


_current: ContextVar[RequestContext | None] = ContextVar("hearth_request_context", default=None)


def current() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str:
    ctx = _current.get()
    return ctx.request_id if ctx else ""


def activate(ctx: RequestContext):
    return _current.set(ctx)


def deactivate(token) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex
