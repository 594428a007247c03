from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import models
from django.db.models import Q

from accounts.restrict import user_can

from .models import AuditEvent

# An object's history also shows the events about objects that belong to it:
# label -> (related manager on the object, label of the related objects' events).
_HISTORY_PARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "datasets_app.dataset": (("versions", "datasets_app.datasetversion"),),
}


def audit_event_list(*, user, filters: dict | None = None):
    """Audit events for Auditors and Admins (global `view_auditevent`); nothing for others."""
    if not user.has_perm("audit.view_auditevent"):
        return AuditEvent.objects.none()
    events = AuditEvent.objects.all()
    filters = filters or {}
    if filters.get("user"):
        events = events.filter(actor_username=filters["user"])
    if filters.get("action"):
        events = events.filter(action__startswith=filters["action"])
    if filters.get("outcome"):
        events = events.filter(outcome=filters["outcome"])
    if filters.get("object_type"):
        events = events.filter(object_type=filters["object_type"])
    if filters.get("object_id"):
        events = events.filter(object_id=str(filters["object_id"]))
    if isinstance(filters.get("since"), datetime):
        events = events.filter(created_at__gte=filters["since"])
    if isinstance(filters.get("until"), datetime):
        events = events.filter(created_at__lt=filters["until"])
    return events


def filter_summary(filters: dict) -> dict[str, Any]:
    """The filters that were set, JSON-ready (for the record of an export)."""
    return {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in filters.items()
        if value not in (None, "")
    }


def recent_activity(*, user, limit: int = 10):
    """The dashboard's feed: everyone's for auditors and admins, your own for everyone else."""
    if user.has_perm("audit.view_auditevent"):
        return AuditEvent.objects.all()[:limit]
    return AuditEvent.objects.filter(actor=user)[:limit]


def object_history(*, user, obj: models.Model, limit: int = 50):
    """The events about `obj` (and, for a dataset, about its versions), newest first, for a
    user who may view `obj`; nothing for anyone else."""
    if not user_can(user, "view", obj):
        return AuditEvent.objects.none()
    label = obj._meta.label_lower
    about = Q(object_type=label, object_id=str(obj.pk))
    for manager, part_label in _HISTORY_PARTS.get(label, ()):
        ids = [str(pk) for pk in getattr(obj, manager).values_list("pk", flat=True)]
        if ids:
            about |= Q(object_type=part_label, object_id__in=ids)
    return AuditEvent.objects.filter(about).order_by("-position")[:limit]
