"""Reads for accounts. Admin listings are for holders of the matching global permission; the
views check it, these return querysets."""

from __future__ import annotations

from collections import OrderedDict

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import ApiToken, Role, Team
from .roles import EXTRA_PERMISSIONS, HEARTH_APPS, ROLE_DESCRIPTIONS

# What a custom role may be composed of: Hearth's own permissions plus user/group administration.
ROLE_PERMISSION_MODELS = (("auth", "user"), ("auth", "group"))

_ACTION_LABELS = {
    "add": _("Create"),
    "change": _("Change"),
    "delete": _("Delete"),
    "view": _("View"),
}


def api_token_list(*, user):
    """A user's own tokens, newest first."""
    return ApiToken.objects.filter(user=user)


def user_list() -> QuerySet:
    active_tokens = Count(
        "api_tokens", filter=Q(api_tokens__revoked_at__isnull=True), distinct=True
    )
    return (
        get_user_model()
        .objects.prefetch_related("groups__role", "groups__team")
        .annotate(token_count=active_tokens)
        .order_by("username")
    )


def user_roles(user) -> list[Role]:
    return list(Role.objects.select_related("group").filter(group__user=user))


def user_teams(user) -> list[Team]:
    return list(Team.objects.select_related("group").filter(group__user=user))


def role_list() -> QuerySet:
    roles = Role.objects.select_related("group").annotate(member_count=Count("group__user"))
    return roles.order_by("-builtin", "group__name")  # Meta.ordering is dropped by GROUP BY


def team_list(*, user) -> QuerySet:
    """Every team for holders of `auth.view_group`; otherwise the teams you belong to."""
    teams = Team.objects.select_related("group").annotate(member_count=Count("group__user"))
    teams = teams.order_by("group__name")
    if user.has_perm("auth.view_group"):
        return teams
    return teams.filter(group__user=user)


def role_permission_choices() -> QuerySet:
    condition = Q(content_type__app_label__in=HEARTH_APPS)
    for app_label, model in ROLE_PERMISSION_MODELS:
        condition |= Q(content_type__app_label=app_label, content_type__model=model)
    return (
        Permission.objects.filter(condition)
        .select_related("content_type")
        .order_by("content_type__app_label", "content_type__model", "codename")
    )


def permission_code(perm: Permission) -> str:
    return f"{perm.content_type.app_label}.{perm.codename}"


def permission_label(perm: Permission) -> str:
    """A translated, human label: the model's verbose name and the action, or the custom
    permission's own (translatable) Meta name."""
    key = (perm.content_type.app_label, perm.content_type.model)
    try:
        meta = apps.get_model(*key)._meta
    except LookupError:  # a stale content type
        return perm.name
    custom = dict(meta.permissions) | dict(EXTRA_PERMISSIONS.get(key, ()))
    if perm.codename in custom:
        return str(custom[perm.codename])
    action = perm.codename.removesuffix(f"_{meta.model_name}")
    if action in _ACTION_LABELS:
        return gettext("%(action)s: %(models)s") % {
            "action": _ACTION_LABELS[action],
            "models": meta.verbose_name_plural,
        }
    return perm.name


def role_permissions_grouped(perms=None) -> OrderedDict:
    """{app verbose name: [(code, label), …]} for the role editor."""
    grouped: OrderedDict = OrderedDict()
    for perm in perms if perms is not None else role_permission_choices():
        app = apps.get_app_config(perm.content_type.app_label)
        grouped.setdefault(str(app.verbose_name), []).append(
            (permission_code(perm), permission_label(perm))
        )
    return grouped


def role_description(role: Role) -> str:
    """Built-in descriptions are translated; custom ones are shown as written."""
    if role.builtin and role.name in ROLE_DESCRIPTIONS:
        return str(ROLE_DESCRIPTIONS[role.name])
    return role.description
