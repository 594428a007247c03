"""Writes for accounts: API tokens and the bootstrap admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record

from .models import ApiToken, hash_token
from .roles import ADMIN

TOKEN_PREFIX = "hth_"  # noqa: S105 (a public prefix, not a secret)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown to the user once, never stored


def api_token_create(*, user, name: str, expires_in_days: int | None = None) -> IssuedToken:
    days = settings.HEARTH_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= settings.HEARTH_TOKEN_MAX_DAYS:
        raise ValidationError(
            {
                "expires_in_days": _("Must be between 1 and %(max)d days.")
                % {"max": settings.HEARTH_TOKEN_MAX_DAYS}
            }
        )
    if not name.strip():
        raise ValidationError({"name": _("Give the token a name.")})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip()[:100],
            prefix=raw[:12],
            key_hash=hash_token(raw),
            expires_at=timezone.now() + timedelta(days=days),
        )
        record(
            action="accounts.token.create",
            actor=user,
            obj=token,
            details={"expires_at": token.expires_at.isoformat()},
        )
    return IssuedToken(token=token, raw=raw)


def api_token_revoke(*, token: ApiToken, actor) -> ApiToken:
    if token.revoked_at is not None:
        return token  # already revoked: nothing changed, nothing to record
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(action="accounts.token.revoke", actor=actor, obj=token)
    return token


def api_token_touch(*, token: ApiToken) -> None:
    """Note a token's use, at most once a minute (no write on every request)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


def admin_ensure(*, username: str = "admin", email: str = "") -> str | None:
    """Create the first administrator with a random password; return it, or None if one exists.

    Never a default password: the password is printed once by the launcher and not stored.
    """
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return None
    password = secrets.token_urlsafe(15)
    with transaction.atomic():
        user = User.objects.create_superuser(username=username, email=email, password=password)
        user.groups.add(Group.objects.get(name=ADMIN))
        record(
            action="accounts.user.create",
            obj=user,
            actor_username="system",
            details={"bootstrap": True},
        )
    return password
