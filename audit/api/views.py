from rest_framework import serializers, viewsets

from ..forms import AuditFilterForm
from ..selectors import audit_event_list
from .serializers import AuditEventSerializer


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail (Auditor, Admin). Filters: user, action, object_type, object_id, outcome,
    since, until (ISO 8601). Everyone else gets an empty list and 404s."""

    serializer_class = AuditEventSerializer

    def get_queryset(self):
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            # Never answer a bad filter with the unfiltered trail.
            raise serializers.ValidationError(form.errors.get_json_data())
        return audit_event_list(user=self.request.user, filters=form.cleaned_data)
