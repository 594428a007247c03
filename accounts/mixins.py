"""The UI side of the permission funnel: class-based views load objects only through
`restrict(user, action)`, so an object a user may not see answers 404 — never 403."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404

from audit.services import record_denied

from .restrict import user_can


class RestrictedViewMixin(LoginRequiredMixin):
    """For list, detail, update and delete views over a model with a `RestrictedQuerySet`.

    `action` is what the view does (`view`, `change`, `delete`). Objects outside the user's
    `view` scope do not exist for them (404); visible objects they may not act on answer 403.
    Both are recorded as denials.
    """

    model = None
    action = "view"

    def get_base_queryset(self):
        """Override to narrow or annotate; the funnel is applied on top of it."""
        return self.model.objects.all()

    def get_queryset(self):
        return self.get_base_queryset().restrict(self.request.user, "view")

    def get_object(self, queryset=None):
        user = self.request.user
        try:
            obj = super().get_object(queryset)
        except Http404:
            object_id = self.kwargs.get(self.pk_url_kwarg, "")
            record_denied(
                actor=user,
                model=self.model,
                action=self.action,
                object_id=object_id,
                reason="not visible",
            )
            raise
        if self.action != "view" and not user_can(user, self.action, obj):
            record_denied(actor=user, model=self.model, action=self.action, obj=obj)
            raise PermissionDenied
        return obj
