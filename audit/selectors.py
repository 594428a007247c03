from __future__ import annotations

from datetime import datetime

from .models import AuditEvent


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


def recent_activity(*, user, limit: int = 10):
    """The dashboard's feed: everyone's for auditors and admins, your own for everyone else."""
    if user.has_perm("audit.view_auditevent"):
        return AuditEvent.objects.all()[:limit]
    return AuditEvent.objects.filter(actor=user)[:limit]
