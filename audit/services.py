"""The one way to write the audit trail. Every feature calls `record`."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from . import context
from .models import AuditEvent

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
    request caused); the caller names the action, the actor and the object.
    """
    ctx = context.current()
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    fields = {
        "object_type": object_type,
        "object_id": str(object_id),
        "object_repr": object_repr[:200],
        **_object_fields(obj),
    }
    return AuditEvent.objects.create(
        action=action,
        actor=actor if authenticated else None,
        actor_username=(actor.get_username() if authenticated else actor_username)[:150],
        ip=ctx.ip if ctx else None,
        user_agent=ctx.user_agent if ctx else "",
        request_id=ctx.request_id if ctx else "",
        outcome=outcome,
        details=details or {},
        **fields,
    )


def record_denied(
    *,
    actor,
    model: type[models.Model],
    action: str,
    obj: models.Model | None = None,
    object_id: str | int = "",
    reason: str = "",
) -> AuditEvent:
    """A permission denial: an invisible object (answered 404) or a forbidden action (403)."""
    return record(
        action=f"{model._meta.label_lower}.{action}",
        actor=actor,
        obj=obj,
        object_type=model._meta.label_lower,
        object_id=object_id,
        outcome=AuditEvent.Outcome.DENIED,
        details={"reason": reason} if reason else None,
    )
