"""The permission funnel. Every page and endpoint that lists or loads objects goes through
`Model.objects.restrict(user, action)`; nothing else decides who sees what.

A user may act on an object when any of these holds:
- they hold the global model permission `<app>.<action>_<model>` (superuser, Admin, Auditor for
  `view`): every object of the type;
- django-guardian grants them, or one of their groups, that permission on the object;
- they own it (`owner` field) — owners are also granted object permissions at creation, the owner
  rule only keeps an object visible to its creator if a grant is removed by mistake.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from guardian.shortcuts import get_objects_for_user


def perm_name(model: type[models.Model], action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def user_can(user, action: str, obj: models.Model) -> bool:
    """Object-level check for one loaded object (same rules as `restrict`)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    perm = perm_name(type(obj), action)
    if user.has_perm(perm) or user.has_perm(perm, obj):
        return True
    return getattr(obj, "owner_id", None) == user.pk and action in OWNER_ACTIONS


# What an owner may always do with their own object (train on their dataset, download their
# model); raw access is an explicit grant. Owners may also share (accounts.sharing).
OWNER_ACTIONS = frozenset({"view", "use", "change", "delete", "cancel"})


class RestrictedQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view") -> RestrictedQuerySet:
        if not (user and user.is_authenticated and user.is_active):
            return self.none()
        perm = perm_name(self.model, action)
        if user.has_perm(perm):
            return self
        granted = get_objects_for_user(
            user, perm, klass=self.model, accept_global_perms=False, with_superuser=False
        ).values("pk")
        condition = Q(pk__in=granted)
        if action in OWNER_ACTIONS and any(f.name == "owner" for f in self.model._meta.fields):
            condition |= Q(owner=user)
        return self.filter(condition)


RestrictedManager = models.Manager.from_queryset(RestrictedQuerySet)
