"""`Authorization: Bearer <token>` for the API (personal tokens, hashed at rest)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from audit.models import AuditEvent
from audit.services import record

from .models import ApiToken, hash_token
from .services import api_token_touch


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Malformed token.")) from None
        token = (
            ApiToken.objects.active()
            .select_related("user")
            .filter(key_hash=hash_token(raw))
            .first()
        )
        if token is None:
            record(
                action="auth.token_failed",
                outcome=AuditEvent.Outcome.DENIED,
                details={"prefix": raw[:12]},
            )
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
