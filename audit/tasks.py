"""Housekeeping on the CPU queue (config/celery.py routes audit.tasks.*)."""

from celery import shared_task


@shared_task(soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def archive_expired() -> int:
    """Archive and delete the audit events past retention. Returns how many were archived."""
    from .services import audit_archive_expired

    return sum(c.count for c in audit_archive_expired())
