from rest_framework import viewsets

from ..forms import AuditFilterForm
from ..selectors import audit_event_list
from .serializers import AuditEventSerializer


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail (Auditor, Admin). Filters: user, action, object_type, object_id, outcome,
    since, until (ISO 8601). Everyone else gets an empty list and 404s."""

    serializer_class = AuditEventSerializer

    def get_queryset(self):
        form = AuditFilterForm(self.request.query_params or None)
        filters = form.cleaned_data if form.is_valid() else {}
        return audit_event_list(user=self.request.user, filters=filters)
