"""Sharing one object with a user or a team, at a level. Services (`share_grant`,
`share_revoke`) and selectors (`shares_of`, `can_share`) over django-guardian object grants;
what a grant then allows is decided by the one permission funnel (`accounts.restrict`).

Levels are cumulative; each maps, per model, to the object permissions granted:

| object        | view | use                     | change               | manage                   |
|---------------|------|-------------------------|----------------------|--------------------------|
| dataset       | view | view, use (train on it) | view, use, change    | + delete, manage (share) |
| job           | view | —                       | view, change, cancel | + delete, manage (share) |
| model version | view | view, use (download it) | view, use, change    | + delete, manage (share) |

`view_raw` (raw values of sensitive columns, raw downloads, desensitization sample pairs) is an
independent toggle on datasets: any level, never implied by one.

Rules: only the owner, holders of `manage` on the object and Admins (global `manage_*`) share;
nobody grants what they do not hold themselves (a manager without `view_raw` cannot grant it;
owners hold every level on their object, but `view_raw` only if it was granted to them); the
owner's own access and your own access are not changed here. Every grant and revoke is audited
(`permission.grant` / `permission.revoke`, levels before and after); refusals are audited as
denied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from audit.models import AuditEvent
from audit.services import record

from .models import Team
from .restrict import user_can

VIEW, USE, CHANGE, MANAGE = "view", "use", "change", "manage"
LEVELS = (VIEW, USE, CHANGE, MANAGE)
LEVEL_LABELS = {
    VIEW: gettext_lazy("View"),
    USE: gettext_lazy("Use"),
    CHANGE: gettext_lazy("Change"),
    MANAGE: gettext_lazy("Manage"),
}
VIEW_RAW = "view_raw"


@dataclass(frozen=True)
class Policy:
    """What each level grants on one model (actions, i.e. `<action>_<model>` codenames)."""

    levels: dict[str, tuple[str, ...]]
    view_raw: bool = False

    @property
    def actions(self) -> frozenset[str]:
        held = {a for actions in self.levels.values() for a in actions}
        return frozenset(held | ({VIEW_RAW} if self.view_raw else set()))


POLICIES: dict[str, Policy] = {
    "datasets_app.dataset": Policy(
        levels={
            VIEW: (VIEW,),
            USE: (VIEW, USE),
            CHANGE: (VIEW, USE, CHANGE),
            MANAGE: (VIEW, USE, CHANGE, "delete", MANAGE),
        },
        view_raw=True,
    ),
    "jobs.job": Policy(
        levels={
            VIEW: (VIEW,),
            CHANGE: (VIEW, CHANGE, "cancel"),
            MANAGE: (VIEW, CHANGE, "cancel", "delete", MANAGE),
        }
    ),
    "jobs.modelversion": Policy(
        levels={
            VIEW: (VIEW,),
            USE: (VIEW, USE),
            CHANGE: (VIEW, USE, CHANGE),
            MANAGE: (VIEW, USE, CHANGE, "delete", MANAGE),
        }
    ),
}


@dataclass(frozen=True)
class Share:
    """One user's or team's direct grant on an object."""

    kind: str  # "user" | "team"
    id: int
    name: str
    level: str | None  # None: some permissions, but not a whole level (set outside sharing)
    view_raw: bool = False
    owner: bool = False
    permissions: tuple[str, ...] = field(default_factory=tuple)


def policy_for(obj: models.Model) -> Policy:
    try:
        return POLICIES[obj._meta.label_lower]
    except KeyError:
        raise ValueError(f"{obj._meta.label_lower} objects are not shareable") from None


def is_shareable(obj: models.Model) -> bool:
    return obj._meta.label_lower in POLICIES


def levels_for(obj: models.Model) -> list[tuple[str, str]]:
    """(level, label) pairs available on this object, lowest first."""
    return [(level, LEVEL_LABELS[level]) for level in policy_for(obj).levels]


def _codename(obj: models.Model, action: str) -> str:
    return f"{action}_{obj._meta.model_name}"


def _is_owner(user, obj: models.Model) -> bool:
    return user is not None and getattr(obj, "owner_id", None) == user.pk


def can_share(user, obj: models.Model) -> bool:
    """The owner, a holder of `manage` on the object, or an Admin (global `manage_*`)."""
    if not (user and user.is_authenticated and user.is_active) or not is_shareable(obj):
        return False
    return _is_owner(user, obj) or user_can(user, MANAGE, obj)


def _holds(user, obj: models.Model, action: str) -> bool:
    """May `user` pass `action` on to others? Owners hold every level action on their own
    object; `view_raw` only when it was actually granted to them."""
    if action != VIEW_RAW and _is_owner(user, obj):
        return True
    return user_can(user, action, obj)


def _level_of(policy: Policy, actions: set[str]) -> str | None:
    held = None
    for level, needed in policy.levels.items():  # lowest first
        if set(needed) <= actions:
            held = level
    return held


def _state(policy: Policy, codenames: set[str], model_name: str) -> dict:
    actions = {c.removesuffix(f"_{model_name}") for c in codenames}
    return {"level": _level_of(policy, actions), "view_raw": VIEW_RAW in actions}


def _direct_codenames(obj: models.Model, *, user=None, team: Team | None = None) -> set[str]:
    content_type = ContentType.objects.get_for_model(obj)
    if user is not None:
        rows = get_user_obj_perms_model(obj).objects.filter(user=user)
    else:
        rows = get_group_obj_perms_model(obj).objects.filter(group=team.group)
    return set(
        rows.filter(content_type=content_type, object_pk=str(obj.pk)).values_list(
            "permission__codename", flat=True
        )
    )


def _target(user, team: Team | None) -> dict:
    if (user is None) == (team is None):
        raise ValidationError(_("Share with one user or one team."))
    if user is not None:
        return {"target_type": "user", "target": user.get_username(), "target_id": user.pk}
    return {"target_type": "team", "target": team.name, "target_id": team.pk}


def _deny(*, action: str, actor, obj: models.Model, reason: str, details: dict) -> None:
    # Recorded outside any transaction: the refusal must stay in the trail after the rollback.
    record(
        action=action,
        actor=actor,
        obj=obj,
        outcome=AuditEvent.Outcome.DENIED,
        details={**details, "reason": reason},
    )
    raise PermissionDenied(reason)


def require_can_share(*, actor, obj: models.Model, action: str = "permission.view") -> None:
    """Raise PermissionDenied (audited) unless `actor` may share `obj`."""
    if not can_share(actor, obj):
        _deny(action=action, actor=actor, obj=obj, reason="may not share", details={})


def _check_target(*, actor, obj: models.Model, user) -> None:
    if user is None:
        return
    if _is_owner(user, obj):
        raise ValidationError({"user": _("The owner always has full access.")})
    if user.pk == actor.pk:
        raise ValidationError({"user": _("You cannot change your own access.")})


def share_grant(
    *,
    actor,
    obj: models.Model,
    user=None,
    team: Team | None = None,
    level: str,
    view_raw: bool = False,
) -> Share:
    """Set a user's or a team's access to `obj` to exactly `level` (+ `view_raw`)."""
    policy = policy_for(obj)
    target = _target(user, team)
    if level not in policy.levels:
        raise ValidationError({"level": _("“%(level)s” is not a level here.") % {"level": level}})
    if view_raw and not policy.view_raw:
        raise ValidationError({"view_raw": _("This object has no raw values to share.")})
    details = {**target, "level": level, "view_raw": view_raw}
    require_can_share(actor=actor, obj=obj, action="permission.grant")
    wanted = set(policy.levels[level]) | ({VIEW_RAW} if view_raw else set())
    missing = sorted(a for a in wanted if not _holds(actor, obj, a))
    if missing:
        _deny(
            action="permission.grant",
            actor=actor,
            obj=obj,
            reason="exceeds own access",
            details={**details, "missing": missing},
        )
    _check_target(actor=actor, obj=obj, user=user)
    holder = user if user is not None else team.group
    with transaction.atomic():
        current = _direct_codenames(obj, user=user, team=team)
        model_name = obj._meta.model_name
        for action in policy.actions:
            codename = _codename(obj, action)
            if action in wanted and codename not in current:
                assign_perm(codename, holder, obj)
            elif action not in wanted and codename in current:
                remove_perm(codename, holder, obj)
        after = _direct_codenames(obj, user=user, team=team)
        record(
            action="permission.grant",
            actor=actor,
            obj=obj,
            details={
                **target,
                "before": _state(policy, current, model_name),
                "after": _state(policy, after, model_name),
            },
        )
    return _share(obj, policy, user=user, team=team, codenames=after)


def share_revoke(*, actor, obj: models.Model, user=None, team: Team | None = None) -> None:
    """Remove every sharing permission a user or a team holds directly on `obj`."""
    policy = policy_for(obj)
    target = _target(user, team)
    require_can_share(actor=actor, obj=obj, action="permission.revoke")
    _check_target(actor=actor, obj=obj, user=user)
    holder = user if user is not None else team.group
    with transaction.atomic():
        current = _direct_codenames(obj, user=user, team=team)
        shared = {_codename(obj, a) for a in policy.actions} & current
        if not shared:
            field_name = target["target_type"]
            raise ValidationError({field_name: _("Nothing is shared with them here.")})
        for codename in shared:
            remove_perm(codename, holder, obj)
        record(
            action="permission.revoke",
            actor=actor,
            obj=obj,
            details={
                **target,
                "before": _state(policy, current, obj._meta.model_name),
                "after": {"level": None, "view_raw": False},
            },
        )


def _share(obj, policy: Policy, *, user=None, team=None, codenames: set[str]) -> Share:
    state = _state(policy, codenames, obj._meta.model_name)
    owner = _is_owner(user, obj)
    return Share(
        kind="user" if user is not None else "team",
        id=user.pk if user is not None else team.pk,
        name=user.get_username() if user is not None else team.name,
        level=MANAGE if owner else state["level"],
        view_raw=state["view_raw"],
        owner=owner,
        permissions=tuple(sorted(codenames)),
    )


def shares_of(*, obj: models.Model) -> list[Share]:
    """Who has direct grants on `obj`: the owner first, then users, then teams, by name.
    Global role permissions (Admin, Auditor) are not shares and are not listed."""
    policy = policy_for(obj)
    content_type = ContentType.objects.get_for_model(obj)
    codes = {_codename(obj, a) for a in policy.actions}

    def grants(model):
        return model.objects.filter(
            content_type=content_type, object_pk=str(obj.pk), permission__codename__in=codes
        )

    by_user: dict[int, set[str]] = {}
    for user_id, codename in grants(get_user_obj_perms_model(obj)).values_list(
        "user_id", "permission__codename"
    ):
        by_user.setdefault(user_id, set()).add(codename)
    by_group: dict[int, set[str]] = {}
    for group_id, codename in grants(get_group_obj_perms_model(obj)).values_list(
        "group_id", "permission__codename"
    ):
        by_group.setdefault(group_id, set()).add(codename)
    owner_id = getattr(obj, "owner_id", None)
    users = get_user_model().objects.filter(models.Q(pk__in=by_user) | models.Q(pk=owner_id))
    teams = Team.objects.select_related("group").filter(group_id__in=by_group)
    # The owner is listed even without direct grants (owners act through the owner rule).
    shares = [_share(obj, policy, user=u, codenames=by_user.get(u.pk, set())) for u in users]
    shares += [_share(obj, policy, team=t, codenames=by_group[t.group_id]) for t in teams]
    return sorted(shares, key=lambda s: (not s.owner, s.kind != "user", s.name.casefold()))
