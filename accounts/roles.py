"""The built-in roles: Django groups carrying global model permissions.

A global permission means "on every object of that type" (Admin, Auditor). Data Scientists hold
only `add_*` globally; what they may see is what they own or what is shared with them, checked per
object by the permission funnel (`accounts.restrict`).
"""

from __future__ import annotations

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
        "auth.view_user",
        "auth.view_group",
    ),
    VIEWER: ("jobs.view_basemodel",),
}


def sync_roles(apps) -> None:
    """Create the role groups and grant their permissions (additive: never removes a grant)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
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
