import re

from . import context
from .services import close_denial_scope, open_denial_scope

# Accept a caller's id (a proxy or an integration correlating its own logs) only if it is sane.
_VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class RequestIdMiddleware:
    """Give every request an id (`X-Request-ID`), visible to audit records and in the response,
    and a denial scope: denials recorded in a transaction that then rolls back (ATOMIC_REQUESTS,
    DRF's set_rollback on errors) are written once the view is done."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _VALID_ID.fullmatch(incoming) else context.new_request_id()
        request.request_id = request_id
        token = context.activate(
            context.RequestContext(
                request_id=request_id,
                ip=_client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
            )
        )
        scope = open_denial_scope()
        try:
            response = self.get_response(request)
        finally:
            try:
                close_denial_scope(scope)
                if "response" in locals():
                    _record_unrecorded_refusal(request, response)
            finally:
                context.deactivate(token)
        response["X-Request-ID"] = request_id
        return response


def _record_unrecorded_refusal(request, response) -> None:
    """Safety net: a 403, or a 404 on an object route, that no view recorded still leaves a
    denied event, so a new view cannot forget one."""
    from .models import AuditEvent
    from .services import record

    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    if response.status_code not in (403, 404) or not (user and user.is_authenticated):
        return
    if response.status_code == 404 and not (match and match.kwargs):
        return
    rid = getattr(request, "request_id", "")
    if AuditEvent.objects.filter(request_id=rid, outcome=AuditEvent.Outcome.DENIED).exists():
        return
    record(
        action=f"http.{request.method.lower()}",
        actor=user,
        object_type=(match.view_name if match else "")[:100],
        object_id=str(next(iter(match.kwargs.values()), "")) if match and match.kwargs else "",
        outcome=AuditEvent.Outcome.DENIED,
        details={"path": request.path[:500], "status": response.status_code},
    )
