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
            finally:
                context.deactivate(token)
        response["X-Request-ID"] = request_id
        return response
