"""The built-in roles: Django groups carrying global model permissions.

A global permission means "on every object of that type" (Admin, Auditor). Data Scientists hold
only `add_*` globally; what they may see is what they own or what is shared with them, checked per
object by the permission funnel (`accounts.restrict`).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

ADMIN, DATA_SCIENTIST, AUDITOR, VIEWER = "Admin", "Data Scientist", "Auditor", "Viewer"
HEARTH_APPS = ("accounts", "audit", "datasets_app", "jobs")

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # "*" = every permission of Hearth's apps, plus user and group administration.
    ADMIN: (
        "*",
        "auth.add_user",
        "auth.change_user",
        "auth.view_user",
        "auth.view_group",
        "auth.add_group",
        "auth.change_group",
        "auth.delete_group",
    ),
    DATA_SCIENTIST: (
        "datasets_app.add_dataset",
        "jobs.add_job",
        "jobs.view_basemodel",
        "jobs.view_evaluationgate",
        "jobs.view_worker",
    ),
    AUDITOR: (
        "audit.view_auditevent",
        "audit.export_auditevent",
        "datasets_app.view_dataset",
        "jobs.view_basemodel",
        "jobs.view_worker",
        "jobs.view_job",
        "jobs.view_modelversion",
        "jobs.view_evaluationgate",
        "auth.view_user",
        "auth.view_group",
    ),
    VIEWER: ("jobs.view_basemodel",),
}

# Shown translated in the UI; the English text is also stored on the Role row (for the API).
ROLE_DESCRIPTIONS = {
    ADMIN: _("Everything: every object, users, roles, teams, sharing and the audit log."),
    DATA_SCIENTIST: _(
        "Creates datasets and jobs; sees what they own and what is shared with them."
    ),
    AUDITOR: _("Reads everything and the audit log; no changes, no raw sensitive values."),
    VIEWER: _("Sees only what is shared with them."),
}

# Object permissions that sharing needs but whose models do not declare them in Meta (owned by
# other apps). Created here, like Django creates Meta permissions: in a migration and after
# every migrate (a test-database flush removes them otherwise).
EXTRA_PERMISSIONS: dict[tuple[str, str], tuple[tuple[str, object], ...]] = {
    ("jobs", "job"): (("manage_job", _("Can share the job")),),
    ("jobs", "modelversion"): (
        ("use_modelversion", _("Can download and use the model version")),
        ("manage_modelversion", _("Can share the model version")),
    ),
}


def ensure_extra_permissions(apps) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for (app_label, model), perms in EXTRA_PERMISSIONS.items():
        content_type, _created = ContentType.objects.get_or_create(app_label=app_label, model=model)
        for codename, name in perms:
            Permission.objects.get_or_create(
                content_type=content_type, codename=codename, defaults={"name": str(name)}
            )


def sync_roles(apps) -> None:
    """Create the role groups and grant their permissions (additive: never removes a grant),
    and mark them as built-in roles once the Role model exists (not yet in migration 0002)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    try:
        Role = apps.get_model("accounts", "Role")
    except LookupError:
        Role = None
    ensure_extra_permissions(apps)
    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        if Role is not None:
            Role.objects.update_or_create(
                group=group,
                defaults={"builtin": True, "description": str(ROLE_DESCRIPTIONS[role])},
            )
        wanted = Permission.objects.none()
        for perm in perms:
            if perm == "*":
                wanted = wanted | Permission.objects.filter(content_type__app_label__in=HEARTH_APPS)
            else:
                app_label, codename = perm.split(".")
                wanted = wanted | Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                )
        group.permissions.add(*wanted)


def sync_roles_after_migrate(sender, apps=None, **kwargs) -> None:
    """Keep the roles complete when models bring new permissions after the roles migration.

    Runs after each Hearth app's post_migrate (Django creates that app's permissions first), so
    by the last app every permission exists. `flush` sends the signal without `apps`.
    """
    if sender.name in HEARTH_APPS:
        from django.apps import apps as global_apps

        sync_roles(apps or global_apps)
