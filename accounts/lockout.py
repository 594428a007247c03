"""Login throttling glue for django-axes: the (translated) lockout response, the client address,
and the audit record of a lockout. Failed logins themselves are audited by audit.signals."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from audit.services import record


def client_ip(request: HttpRequest) -> str | None:
    # The address the audit log records (audit.middleware): one notion of "where from".
    return request.META.get("REMOTE_ADDR") or None


def _minutes() -> int:
    return max(int(settings.AXES_COOLOFF_TIME.total_seconds() // 60), 1)


def lockout_message() -> str:
    return _(
        "Too many failed login attempts. Try again in %(minutes)d minutes, or ask an "
        "administrator to unlock your account."
    ) % {"minutes": _minutes()}


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    status = settings.AXES_HTTP_RESPONSE_CODE  # 429
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": lockout_message(), "code": "locked_out"}, status=status)
    response: HttpResponse = render(
        request,
        "accounts/locked_out.html",
        {"message": lockout_message(), "minutes": _minutes()},
        status=status,
    )
    response["Retry-After"] = str(_minutes() * 60)
    return response


def record_lockout(sender, request=None, username: str = "", ip_address=None, **kwargs) -> None:
    """Connected to axes' `user_locked_out` (accounts.apps)."""
    record(
        action="auth.locked_out",
        actor_username=str(username or "")[:150],
        outcome=AuditEvent.Outcome.DENIED,
        details={"username": str(username or "")[:150]},
    )
