from django.urls import reverse
from django.utils.translation import gettext_lazy as _


def navigation(request) -> dict:
    """Navigation items for the current user, by role (permissions, not group names)."""
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"nav_items": []}
    items = [
        ("dashboard", _("Dashboard"), reverse("dashboard")),
        ("datasets", _("Datasets"), reverse("datasets_app:list")),
        ("jobs", _("Jobs"), reverse("jobs:list")),
        ("models", _("Models"), reverse("jobs:base_models")),
    ]
    if user.has_perm("audit.view_auditevent"):
        items.append(("audit", _("Audit"), reverse("audit:list")))
    if user.has_perm("auth.view_user"):  # Admin; Auditor read-only
        items.append(("access", _("Users & roles"), reverse("accounts:users")))
    if user.is_staff:
        items.append(("admin", _("Admin"), reverse("admin:index")))
    return {"nav_items": items}
