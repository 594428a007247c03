"""Writes for accounts: API tokens, the bootstrap admin, users' access, roles and teams.

Admin writes check their own permissions too (not only the views), so the API and the UI refuse
the same things: nobody grants a permission they do not hold, built-in roles are read-only, and
nobody changes their own roles or active flag. Refusals are audited as denied.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record, record_denied

from .models import ApiToken, Role, Team, hash_token
from .roles import ADMIN
from .selectors import role_permission_choices

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


# -- admin writes: users, roles, teams ---------------------------------------------------------
def _deny(*, actor, model: type[models.Model], action: str, obj=None, reason: str) -> None:
    # Recorded before raising and outside any transaction, so the refusal stays in the trail.
    record_denied(actor=actor, model=model, action=action, obj=obj, reason=reason)
    raise PermissionDenied(reason)


def _require(actor, perm: str, *, model: type[models.Model], action: str, obj=None) -> None:
    if not (actor and actor.is_active and actor.has_perm(perm)):
        _deny(actor=actor, model=model, action=action, obj=obj, reason=f"needs {perm}")


def _label(perm: Permission) -> str:
    return f"{perm.content_type.app_label}.{perm.codename}"


def _group_perm_labels(group: Group) -> set[str]:
    return {_label(p) for p in group.permissions.select_related("content_type")}


def _check_name(name: str, *, exclude: Group | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give it a name.")})
    if len(name) > 150:
        raise ValidationError({"name": _("At most 150 characters.")})
    taken = Group.objects.filter(name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        # Roles and teams share one namespace (both are groups).
        raise ValidationError({"name": _("A role or team of that name exists.")})
    return name


def _permissions(codes: list[str]) -> list[Permission]:
    choices = {_label(p): p for p in role_permission_choices()}
    unknown = sorted(set(codes) - set(choices))
    if unknown:
        raise ValidationError(
            {"permissions": _("Unknown permissions: %(codes)s") % {"codes": ", ".join(unknown)}}
        )
    return [choices[c] for c in dict.fromkeys(codes)]


def _refuse_escalation(*, actor, wanted: set[str], model, action: str, obj=None) -> None:
    """Nobody hands out a global permission they do not hold themselves."""
    missing = sorted(code for code in wanted if not actor.has_perm(code))
    if missing:
        _deny(
            actor=actor,
            model=model,
            action=action,
            obj=obj,
            reason="exceeds own permissions: " + ", ".join(missing),
        )


def role_create(*, actor, name: str, description: str = "", permissions: list[str]) -> Role:
    _require(actor, "auth.add_group", model=Role, action="add")
    name = _check_name(name)
    perms = _permissions(permissions)
    _refuse_escalation(actor=actor, wanted={_label(p) for p in perms}, model=Role, action="add")
    with transaction.atomic():
        group = Group.objects.create(name=name)
        group.permissions.set(perms)
        role = Role.objects.create(group=group, description=description)
        record(
            action="accounts.role.create",
            actor=actor,
            obj=role,
            details={"name": name, "permissions": sorted(_label(p) for p in perms)},
        )
    return role


def role_update(
    *,
    actor,
    role: Role,
    name: str | None = None,
    description: str | None = None,
    permissions: list[str] | None = None,
) -> Role:
    _require(actor, "auth.change_group", model=Role, action="change", obj=role)
    if role.builtin:
        _deny(actor=actor, model=Role, action="change", obj=role, reason="built-in role")
    group = role.group
    before = {"name": group.name, "description": role.description}
    old_perms = _group_perm_labels(group)
    new_perms = None
    if permissions is not None:
        new_perms = _permissions(permissions)
        added = {_label(p) for p in new_perms} - old_perms
        _refuse_escalation(actor=actor, wanted=added, model=Role, action="change", obj=role)
    with transaction.atomic():
        if name is not None:
            group.name = _check_name(name, exclude=group)
            group.save(update_fields=["name"])
        if description is not None:
            role.description = description
            role.save(update_fields=["description"])
        if new_perms is not None:
            group.permissions.set(new_perms)
        now_perms = _group_perm_labels(group)
        record(
            action="accounts.role.change",
            actor=actor,
            obj=role,
            details={
                "before": before,
                "after": {"name": group.name, "description": role.description},
                "permissions_added": sorted(now_perms - old_perms),
                "permissions_removed": sorted(old_perms - now_perms),
            },
        )
    return role


def role_delete(*, actor, role: Role) -> None:
    _require(actor, "auth.delete_group", model=Role, action="delete", obj=role)
    if role.builtin:
        _deny(actor=actor, model=Role, action="delete", obj=role, reason="built-in role")
    with transaction.atomic():
        members = list(role.group.user_set.values_list("username", flat=True))
        record(
            action="accounts.role.delete",
            actor=actor,
            obj=role,
            details={
                "name": role.name,
                "permissions": sorted(_group_perm_labels(role.group)),
                "members": members,
            },
        )
        role.group.delete()  # cascades to the Role row


def team_create(*, actor, name: str, description: str = "", members=()) -> Team:
    _require(actor, "auth.add_group", model=Team, action="add")
    name = _check_name(name)
    with transaction.atomic():
        team = Team.objects.create(group=Group.objects.create(name=name), description=description)
        record(action="accounts.team.create", actor=actor, obj=team, details={"name": name})
        for user in members:
            team_member_add(actor=actor, team=team, user=user)
    return team


def team_update(
    *, actor, team: Team, name: str | None = None, description: str | None = None
) -> Team:
    _require(actor, "auth.change_group", model=Team, action="change", obj=team)
    before = {"name": team.name, "description": team.description}
    with transaction.atomic():
        if name is not None:
            team.group.name = _check_name(name, exclude=team.group)
            team.group.save(update_fields=["name"])
        if description is not None:
            team.description = description
            team.save(update_fields=["description"])
        record(
            action="accounts.team.change",
            actor=actor,
            obj=team,
            details={"before": before, "after": {"name": team.name, "description": description}},
        )
    return team


def team_delete(*, actor, team: Team) -> None:
    """Delete a team; what was shared with it (guardian group grants) goes with it."""
    _require(actor, "auth.delete_group", model=Team, action="delete", obj=team)
    from guardian.utils import get_group_obj_perms_model

    with transaction.atomic():
        grants = get_group_obj_perms_model().objects.filter(group=team.group).count()
        record(
            action="accounts.team.delete",
            actor=actor,
            obj=team,
            details={
                "name": team.name,
                "members": list(team.members.values_list("username", flat=True)),
                "object_grants_removed": grants,
            },
        )
        team.group.delete()


def team_member_add(*, actor, team: Team, user) -> bool:
    """Add a member; False when they already were one (nothing recorded)."""
    _require(actor, "auth.change_group", model=Team, action="change", obj=team)
    if team.group.user_set.filter(pk=user.pk).exists():
        return False
    with transaction.atomic():
        team.group.user_set.add(user)
        record(
            action="accounts.team.member_add",
            actor=actor,
            obj=team,
            details={"user": user.get_username(), "user_id": user.pk},
        )
    return True


def team_member_remove(*, actor, team: Team, user) -> bool:
    _require(actor, "auth.change_group", model=Team, action="change", obj=team)
    if not team.group.user_set.filter(pk=user.pk).exists():
        return False
    with transaction.atomic():
        team.group.user_set.remove(user)
        record(
            action="accounts.team.member_remove",
            actor=actor,
            obj=team,
            details={"user": user.get_username(), "user_id": user.pk},
        )
    return True


def _access(user) -> dict:
    groups = user.groups.select_related("role", "team")
    return {
        "is_active": user.is_active,
        "roles": sorted(g.name for g in groups if hasattr(g, "role")),
        "teams": sorted(g.name for g in groups if hasattr(g, "team")),
    }


def user_update_access(
    *,
    actor,
    user,
    is_active: bool | None = None,
    roles: list[Role] | None = None,
    teams: list[Team] | None = None,
):
    """Set a user's active flag, roles and teams (each only when given). Deactivating revokes
    the user's API tokens and ends their sessions."""
    User = get_user_model()
    _require(actor, "auth.change_user", model=User, action="change", obj=user)
    if user.is_superuser and not actor.is_superuser:
        _deny(actor=actor, model=User, action="change", obj=user, reason="superuser account")
    if user.pk == actor.pk and (is_active is not None or roles is not None):
        raise ValidationError({"is_active": _("You cannot change your own roles or status.")})
    current_roles = set(Role.objects.filter(group__user=user))
    if roles is not None:
        added = set(roles) - current_roles
        wanted = set().union(*(_group_perm_labels(r.group) for r in added)) if added else set()
        _refuse_escalation(actor=actor, wanted=wanted, model=User, action="change", obj=user)
    before = _access(user)
    with transaction.atomic():
        if roles is not None:
            user.groups.remove(*[r.group for r in current_roles - set(roles)])
            user.groups.add(*[r.group for r in set(roles) - current_roles])
        if teams is not None:
            current_teams = set(Team.objects.filter(group__user=user))
            user.groups.remove(*[t.group for t in current_teams - set(teams)])
            user.groups.add(*[t.group for t in set(teams) - current_teams])
        deactivated = is_active is False and user.is_active
        if is_active is not None and is_active != user.is_active:
            user.is_active = is_active
            user.save(update_fields=["is_active"])
        after = _access(user)
        if after != before:
            record(
                action="accounts.user.change",
                actor=actor,
                obj=user,
                details={"before": before, "after": after},
            )
        if deactivated:
            tokens = user_tokens_revoke(actor=actor, user=user)
            sessions = user_sessions_end(user=user)
            record(
                action="accounts.user.deactivate",
                actor=actor,
                obj=user,
                details={"tokens_revoked": tokens, "sessions_ended": sessions},
            )
    return user


def user_tokens_revoke(*, actor, user) -> int:
    """Revoke every unrevoked API token of `user` (each one audited); how many were revoked."""
    if actor.pk != user.pk:
        _require(actor, "auth.change_user", model=get_user_model(), action="change", obj=user)
    tokens = list(ApiToken.objects.filter(user=user, revoked_at__isnull=True))
    with transaction.atomic():
        for token in tokens:
            api_token_revoke(token=token, actor=actor)
    return len(tokens)


def user_sessions_end(*, user) -> int:
    """Delete the user's live sessions (database-backed session engines). An inactive user's
    session would not authenticate anyway; this also ends it for good if they are reactivated."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended
