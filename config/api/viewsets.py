"""The API side of the permission funnel. Every Hearth viewset over a model derives from
`RestrictedModelViewSet`: querysets come from `restrict(user, "view")`, so invisible objects
answer 404, and object actions check `change`/`delete` (403 when visible but not allowed)."""

from __future__ import annotations

from django.http import Http404
from rest_framework import permissions, viewsets

from accounts.restrict import perm_name, user_can
from audit.services import record_denied

_ACTION_FOR_METHOD = {"PUT": "change", "PATCH": "change", "DELETE": "delete"}


class FunnelPermission(permissions.BasePermission):
    """Create needs the global `add_*` permission; object writes need `change`/`delete`."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if view.action == "create":
            allowed = request.user.has_perm(perm_name(view.queryset_model(), "add"))
            if not allowed:
                record_denied(actor=request.user, model=view.queryset_model(), action="add")
            return allowed
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        action = view.object_action(request)
        target = view.permission_object(obj)
        if action == "view" or user_can(request.user, action, target):
            return True
        record_denied(actor=request.user, model=type(target), action=action, obj=target)
        return False


class RestrictedQueryMixin:
    """Shared by model viewsets and read-only viewsets."""

    permission_classes = [FunnelPermission]
    model = None
    # Custom @action names mapped to the object permission they need, e.g. {"download": "view_raw"}.
    action_permissions: dict[str, str] = {}

    def queryset_model(self):
        return self.model

    def permission_object(self, obj):
        """The object whose permissions govern `obj` (e.g. a version's dataset)."""
        return obj

    def object_action(self, request) -> str:
        if self.action in self.action_permissions:
            return self.action_permissions[self.action]
        return _ACTION_FOR_METHOD.get(request.method, "view")

    def get_base_queryset(self):
        """Override to narrow or annotate; the funnel is applied on top of it."""
        return self.model.objects.all()

    def get_queryset(self):
        return self.get_base_queryset().restrict(self.request.user, "view")

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            record_denied(
                actor=self.request.user,
                model=self.model,
                action=self.object_action(self.request),
                object_id=self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""),
                reason="not visible",
            )
            raise


class RestrictedModelViewSet(RestrictedQueryMixin, viewsets.ModelViewSet):
    pass


class RestrictedReadOnlyViewSet(RestrictedQueryMixin, viewsets.ReadOnlyModelViewSet):
    pass
