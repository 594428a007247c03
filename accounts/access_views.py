"""Access-control pages: users, roles and teams (Admin; Auditor read-only), and the share
dialog's form targets on dataset, job and model version pages. Thin: the services decide and
audit; these only check the page's global permission and turn refusals into messages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from audit.services import record_denied

from . import services, sharing
from .forms import MemberForm, RoleForm, ShareForm, TeamForm, UserAccessForm
from .models import Role, Team
from .selectors import (
    permission_code,
    role_description,
    role_list,
    role_permission_choices,
    role_permissions_grouped,
    team_list,
    user_list,
    user_roles,
    user_teams,
)

NAV = {"nav_section": "access"}


def _require(request, perm: str, model) -> None:
    if not request.user.has_perm(perm):
        record_denied(actor=request.user, model=model, action=perm.split(".")[1], reason=perm)
        raise PermissionDenied


def _flash_errors(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


# -- users ------------------------------------------------------------------------------------
@login_required
def users(request):
    _require(request, "auth.view_user", get_user_model())
    context = {
        **NAV,
        "users": user_list(),
        "can_change": request.user.has_perm("auth.change_user"),
    }
    return render(request, "accounts/users.html", context)


@login_required
def user_detail(request, pk: int):
    _require(request, "auth.view_user", get_user_model())
    person = get_object_or_404(user_list(), pk=pk)
    form = UserAccessForm(
        request.POST or None,
        roles=role_list(),
        teams=team_list(user=request.user),
        initial={
            "is_active": person.is_active,
            "roles": [str(r.pk) for r in user_roles(person)],
            "teams": [str(t.pk) for t in user_teams(person)],
        },
    )
    if request.method == "POST":
        _require(request, "auth.change_user", get_user_model())
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.user_update_access(
                    actor=request.user,
                    user=person,
                    is_active=data["is_active"] if person.pk != request.user.pk else None,
                    roles=list(Role.objects.filter(pk__in=data["roles"]))
                    if person.pk != request.user.pk
                    else None,
                    teams=list(Team.objects.filter(pk__in=data["teams"])),
                )
            except ValidationError as exc:
                _flash_errors(request, exc)
            else:
                messages.success(request, _("Access of %(user)s saved.") % {"user": person})
            return redirect("accounts:user", pk=person.pk)
    context = {
        **NAV,
        "person": person,
        "form": form,
        "is_self": person.pk == request.user.pk,
        "can_change": request.user.has_perm("auth.change_user"),
        "tokens": person.api_tokens.filter(revoked_at__isnull=True),
    }
    return render(request, "accounts/user_detail.html", context)


@login_required
@require_POST
def user_revoke_tokens(request, pk: int):
    _require(request, "auth.change_user", get_user_model())
    person = get_object_or_404(get_user_model(), pk=pk)
    count = services.user_tokens_revoke(actor=request.user, user=person)
    messages.success(request, _("%(count)d token(s) revoked.") % {"count": count})
    return redirect("accounts:user", pk=person.pk)


@login_required
@require_POST
def user_toggle_active(request, pk: int):
    _require(request, "auth.change_user", get_user_model())
    person = get_object_or_404(get_user_model(), pk=pk)
    try:
        services.user_update_access(actor=request.user, user=person, is_active=not person.is_active)
    except ValidationError as exc:
        _flash_errors(request, exc)
    else:
        done = _("%(user)s activated.") if person.is_active else _("%(user)s deactivated.")
        messages.success(request, done % {"user": person})
    return redirect("accounts:users")


# -- roles ------------------------------------------------------------------------------------
def _choices() -> list[tuple[str, str]]:
    return [(permission_code(p), permission_code(p)) for p in role_permission_choices()]


@login_required
def roles(request):
    _require(request, "auth.view_group", Role)
    rows = [(role, role_description(role)) for role in role_list()]
    context = {**NAV, "rows": rows, "can_add": request.user.has_perm("auth.add_group")}
    return render(request, "accounts/roles.html", context)


def _role_form_page(request, form, role: Role | None):
    checked = set(form["permissions"].value() or [])
    context = {
        **NAV,
        "form": form,
        "role": role,
        "grouped": role_permissions_grouped(),
        "checked": checked,
        "description": role_description(role) if role else "",
        "editable": role is None or not role.builtin,
        "can_change": request.user.has_perm("auth.change_group"),
        "can_delete": request.user.has_perm("auth.delete_group"),
    }
    return render(request, "accounts/role_form.html", context)


@login_required
def role_new(request):
    _require(request, "auth.add_group", Role)
    form = RoleForm(request.POST or None, choices=_choices())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            role = services.role_create(
                actor=request.user,
                name=data["name"],
                description=data["description"],
                permissions=data["permissions"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Role “%(name)s” created.") % {"name": role.name})
            return redirect("accounts:role", pk=role.pk)
    return _role_form_page(request, form, None)


@login_required
def role_detail(request, pk: int):
    _require(request, "auth.view_group", Role)
    role = get_object_or_404(role_list(), pk=pk)
    current = [permission_code(p) for p in role.group.permissions.select_related("content_type")]
    form = RoleForm(
        request.POST or None,
        choices=_choices(),
        initial={"name": role.name, "description": role.description, "permissions": current},
    )
    if request.method == "POST":
        _require(request, "auth.change_group", Role)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.role_update(actor=request.user, role=role, **data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Role “%(name)s” saved.") % {"name": role.name})
                return redirect("accounts:role", pk=role.pk)
    return _role_form_page(request, form, role)


@login_required
@require_POST
def role_delete(request, pk: int):
    _require(request, "auth.delete_group", Role)
    role = get_object_or_404(Role, pk=pk)
    name = role.name
    services.role_delete(actor=request.user, role=role)
    messages.success(request, _("Role “%(name)s” deleted.") % {"name": name})
    return redirect("accounts:roles")


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# -- teams ------------------------------------------------------------------------------------
@login_required
def teams(request):
    _require(request, "auth.view_group", Team)
    form = TeamForm(request.POST or None)
    if request.method == "POST":
        _require(request, "auth.add_group", Team)
        if form.is_valid():
            try:
                team = services.team_create(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Team “%(name)s” created.") % {"name": team.name})
                return redirect("accounts:team", pk=team.pk)
    context = {
        **NAV,
        "teams": team_list(user=request.user),
        "form": form,
        "can_add": request.user.has_perm("auth.add_group"),
    }
    return render(request, "accounts/teams.html", context)


@login_required
def team_detail(request, pk: int):
    _require(request, "auth.view_group", Team)
    team = get_object_or_404(team_list(user=request.user), pk=pk)
    form = TeamForm(
        request.POST or None, initial={"name": team.name, "description": team.description}
    )
    if request.method == "POST":
        _require(request, "auth.change_group", Team)
        if form.is_valid():
            try:
                services.team_update(actor=request.user, team=team, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Team saved."))
                return redirect("accounts:team", pk=team.pk)
    context = {
        **NAV,
        "team": team,
        "form": form,
        "member_form": MemberForm(),
        "members": team.members.order_by("username"),
        "can_change": request.user.has_perm("auth.change_group"),
        "can_delete": request.user.has_perm("auth.delete_group"),
    }
    return render(request, "accounts/team_detail.html", context)


@login_required
@require_POST
def team_member_add(request, pk: int):
    _require(request, "auth.change_group", Team)
    team = get_object_or_404(Team, pk=pk)
    form = MemberForm(request.POST)
    person = None
    if form.is_valid():
        person = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
    if person is None:
        messages.error(request, _("No such user."))
    elif services.team_member_add(actor=request.user, team=team, user=person):
        messages.success(request, _("%(user)s added.") % {"user": person})
    return redirect("accounts:team", pk=team.pk)


@login_required
@require_POST
def team_member_remove(request, pk: int, user_pk: int):
    _require(request, "auth.change_group", Team)
    team = get_object_or_404(Team, pk=pk)
    person = get_object_or_404(get_user_model(), pk=user_pk)
    if services.team_member_remove(actor=request.user, team=team, user=person):
        messages.success(request, _("%(user)s removed.") % {"user": person})
    return redirect("accounts:team", pk=team.pk)


@login_required
@require_POST
def team_delete(request, pk: int):
    _require(request, "auth.delete_group", Team)
    team = get_object_or_404(Team, pk=pk)
    name = team.name
    services.team_delete(actor=request.user, team=team)
    messages.success(request, _("Team “%(name)s” deleted.") % {"name": name})
    return redirect("accounts:teams")


# -- sharing (the share dialog on object pages) -------------------------------------------------
def _shareable(kind: str):
    """URL kind → (queryset, detail URL name). Imported late: those apps import accounts."""
    from datasets_app.models import Dataset
    from jobs.models import Job, ModelVersion

    kinds = {
        "dataset": (Dataset.objects.alive(), "datasets_app:detail"),
        "job": (Job.objects.all(), "jobs:detail"),
        "model-version": (ModelVersion.objects.all(), "jobs:model_version"),
    }
    if kind not in kinds:
        raise Http404
    return kinds[kind]


def _load_shared(request, kind: str, pk: int):
    """Through the funnel: an object the user may not see does not exist (404, recorded)."""
    queryset, url_name = _shareable(kind)
    obj = queryset.restrict(request.user, "view").filter(pk=pk).first()
    if obj is None:
        record_denied(
            actor=request.user,
            model=queryset.model,
            action="manage",
            object_id=pk,
            reason="not visible",
        )
        raise Http404
    return obj, url_name


def _back(request, url_name: str, obj):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(reverse(url_name, args=[obj.pk]))


def _share_target(target: str, name: str) -> dict:
    if target == "team":
        team = Team.objects.select_related("group").filter(group__name=name).first()
        if team is None:
            raise ValidationError(_("No such team."))
        return {"team": team}
    person = get_user_model().objects.filter(username=name).first()
    if person is None:
        raise ValidationError(_("No such user."))
    return {"user": person}


@login_required
@require_POST
def share_grant(request, kind: str, pk: int):
    obj, url_name = _load_shared(request, kind, pk)
    sharing.require_can_share(actor=request.user, obj=obj, action="permission.grant")
    form = ShareForm(request.POST, levels=sharing.levels_for(obj))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _back(request, url_name, obj)
    data = form.cleaned_data
    try:
        share = sharing.share_grant(
            actor=request.user,
            obj=obj,
            level=data["level"],
            view_raw=data["view_raw"],
            **_share_target(data["target"], data["name"]),
        )
    except ValidationError as exc:
        _flash_errors(request, exc)
    else:
        messages.success(
            request,
            _("Shared with %(name)s (%(level)s).")
            % {"name": share.name, "level": sharing.LEVEL_LABELS.get(share.level, share.level)},
        )
    return _back(request, url_name, obj)


@login_required
@require_POST
def share_revoke(request, kind: str, pk: int):
    obj, url_name = _load_shared(request, kind, pk)
    sharing.require_can_share(actor=request.user, obj=obj, action="permission.revoke")
    try:
        target = _share_target(request.POST.get("target", ""), request.POST.get("name", ""))
        sharing.share_revoke(actor=request.user, obj=obj, **target)
    except ValidationError as exc:
        _flash_errors(request, exc)
    else:
        messages.success(
            request, _("Access of %(name)s removed.") % {"name": request.POST.get("name")}
        )
    return _back(request, url_name, obj)
