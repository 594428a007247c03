from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .. import exporting
from ..forms import AuditFilterForm
from ..models import AuditEvent
from ..selectors import audit_event_list, filter_summary
from ..services import audit_verify_recorded, record, record_denied
from .serializers import AuditEventSerializer, VerifyResultSerializer


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail (Auditor, Admin). Filters: user, action, object_type, object_id, outcome,
    since, until (ISO 8601). Everyone else gets an empty list and 404s."""

    serializer_class = AuditEventSerializer

    def filter_form(self) -> AuditFilterForm:
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            # Never answer a bad filter with the unfiltered trail.
            raise serializers.ValidationError(form.errors.get_json_data())
        return form

    def get_queryset(self):
        return audit_event_list(user=self.request.user, filters=self.filter_form().cleaned_data)

    def perform_content_negotiation(self, request, force=False):
        if self.action == "export":
            # There `?format=` names the file format, not a DRF renderer; errors stay JSON.
            renderer = JSONRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)

    def _require(self, perm: str, what: str) -> None:
        if not self.request.user.has_perm(perm):
            record_denied(actor=self.request.user, model=AuditEvent, action=what)
            raise exceptions.PermissionDenied

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "archives", OpenApiTypes.BOOL, description="Also check every retention archive."
            )
        ],
        responses={200: VerifyResultSerializer},
    )
    @action(detail=False, methods=["get"])
    def verify(self, request):
        """Verify the hash chain (Auditor, Admin): `ok`, events checked and the first broken
        link (position, event id, reason: altered, missing, inserted, out of order)."""
        self._require("audit.view_auditevent", "verify")
        archives = request.query_params.get("archives", "") in ("1", "true", "yes")
        result = audit_verify_recorded(actor=request.user, archives=archives)
        return Response(result.as_dict())

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(exporting.FORMATS), description="csv (default) or jsonl"
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
        },
    )
    @action(detail=False, methods=["get"])
    def export(self, request):
        """The filtered trail as CSV (UTF-8 with BOM) or JSON Lines, oldest first, streamed.
        Needs `audit.export_auditevent`; the export itself is recorded."""
        self._require("audit.export_auditevent", "export")
        fmt = request.query_params.get("format", "csv")
        if fmt not in exporting.FORMATS:
            raise serializers.ValidationError({"format": [_("Use csv or jsonl.")]})
        form = self.filter_form()
        events = audit_event_list(user=request.user, filters=form.cleaned_data)
        record(
            action="audit.export",
            actor=request.user,
            details={"format": fmt, "filters": filter_summary(form.cleaned_data)},
        )
        content_type, extension = exporting.FORMATS[fmt]
        response = StreamingHttpResponse(
            exporting.stream(events.order_by("position"), fmt), content_type=content_type
        )
        name = f"audit-events-{timezone.now():%Y%m%dT%H%M%SZ}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
