from __future__ import annotations

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.api.sharing import SharingMixin
from accounts.restrict import user_can
from audit.services import record, record_denied
from config.api.viewsets import RestrictedModelViewSet, RestrictedReadOnlyViewSet
from jobs.api.serializers import JobSerializer

from .. import processing, selectors, storage
from ..models import Dataset, DatasetVersion
from ..services import (
    dataset_create,
    dataset_soft_delete,
    dataset_update,
    dataset_version_mark_sensitive,
    dataset_version_upload,
)
from .serializers import (
    AugmentSerializer,
    DatasetSerializer,
    DatasetVersionSerializer,
    DesensitizeSerializer,
    UploadSerializer,
)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def _too_large() -> PayloadTooLarge:
    limit = settings.HEARTH_MAX_UPLOAD_BYTES
    return PayloadTooLarge(
        _("The file is larger than the upload limit of %(mib)s MiB.") % {"mib": limit // 2**20}
    )


def _require(user, action_name: str, dataset: Dataset) -> None:
    if not user_can(user, action_name, dataset):
        record_denied(actor=user, model=Dataset, action=action_name, obj=dataset)
        raise exceptions.PermissionDenied()


class DatasetViewSet(SharingMixin, RestrictedModelViewSet):
    """Datasets you own, that are shared with you, or all of them for Admin and Auditor."""

    model = Dataset
    serializer_class = DatasetSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_base_queryset(self):
        return Dataset.objects.alive().select_related("owner")

    def perform_create(self, serializer):
        serializer.instance = dataset_create(owner=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = dataset_update(
            dataset=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        dataset_soft_delete(dataset=instance, actor=self.request.user)

    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": UploadSerializer},
        responses={201: DatasetVersionSerializer},
    )
    @extend_schema(methods=["GET"], responses={200: DatasetVersionSerializer(many=True)})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request, pk=None):
        """GET: the dataset's versions, newest first. POST multipart `file`: a new version."""
        dataset = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(
                selectors.version_list(user=request.user, dataset=dataset)
            )
            data = DatasetVersionSerializer(
                page, many=True, context=self._version_context(dataset)
            ).data
            return self.get_paginated_response(data)
        _require(request.user, "change", dataset)
        if int(request.META.get("CONTENT_LENGTH") or 0) > settings.HEARTH_MAX_UPLOAD_BYTES + 2**16:
            raise _too_large()  # refused before reading a byte of the body
        upload = request.FILES.get("file")
        if getattr(request._request, "upload_too_large", False):
            raise _too_large()
        if upload is None:
            raise exceptions.ValidationError({"file": [_("Attach the file as multipart `file`.")]})
        try:
            version = dataset_version_upload(
                dataset=dataset,
                actor=request.user,
                path=upload.temporary_file_path(),
                filename=upload.name,
            )
        finally:
            upload.close()  # removes the plaintext temporary file
        return Response(
            DatasetVersionSerializer(version, context=self._version_context(dataset)).data,
            status=status.HTTP_201_CREATED,
        )

    def _version_context(self, dataset):
        return {"can_view_raw": selectors.can_view_raw(self.request.user, dataset)}


class DatasetVersionViewSet(mixins.UpdateModelMixin, RestrictedReadOnlyViewSet):
    """Immutable dataset versions. PATCH only marks `sensitive_columns`."""

    model = DatasetVersion
    serializer_class = DatasetVersionSerializer
    http_method_names = ["get", "patch", "post", "head", "options"]
    action_permissions = {
        "download": "view_raw",
        "desensitize": "change",
        "augment": "change",
        "partial_update": "change",
    }

    def get_base_queryset(self):
        return DatasetVersion.objects.select_related("dataset", "parent")

    def permission_object(self, obj):
        return obj.dataset

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "kwargs", None) and self.lookup_field in self.kwargs:
            version = self.get_object()
            context["can_view_raw"] = selectors.can_view_raw(self.request.user, version.dataset)
        return context

    def perform_update(self, serializer):
        serializer.instance = dataset_version_mark_sensitive(
            version=serializer.instance,
            actor=self.request.user,
            columns=serializer.validated_data.get("sensitive_columns", []),
        )

    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """The first rows with column types; sensitive columns masked without `view_raw`."""
        version = self.get_object()
        limit = min(int(request.query_params.get("rows", settings.HEARTH_PREVIEW_ROWS)), 200)
        preview = selectors.version_preview(user=request.user, version=version, limit=limit)
        record(
            action="datasets_app.version.preview",
            actor=request.user,
            obj=version,
            details={"rows": len(preview["rows"]), "raw": preview["raw"]},
        )
        return Response(preview)

    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The version as UTF-8 JSON Lines, decrypted on the fly. Needs `view_raw`."""
        version = self.get_object()
        record(
            action="datasets_app.version.download",
            actor=request.user,
            obj=version,
            details={"sha256": version.sha256},
        )
        stream = storage.open_plaintext(version.storage_key)
        response = StreamingHttpResponse(stream.iter_chunks(), content_type="application/jsonl")
        name = f"{version.dataset.name}-v{version.number}.jsonl"
        response["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(name)}"
        response["Content-Length"] = str(version.size_bytes)
        response["X-Content-SHA256"] = version.sha256
        return response

    @extend_schema(request=DesensitizeSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def desensitize(self, request, pk=None):
        """Start a desensitization job producing a derived version."""
        version = self.get_object()
        params = DesensitizeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job = processing.desensitize_submit(
            version=version, actor=request.user, **params.validated_data
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DesensitizeSerializer)
    @action(detail=True, methods=["post"], url_path="desensitize-preview")
    def desensitize_preview(self, request, pk=None):
        """The policy's effect on the first rows, before running it. `before` needs view_raw."""
        version = self.get_object()
        params = DesensitizeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        result = processing.desensitize_preview(
            version=version, user=request.user, **params.validated_data
        )
        return Response(result)

    @extend_schema(request=AugmentSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def augment(self, request, pk=None):
        """Start an augmentation job producing a derived version."""
        version = self.get_object()
        params = AugmentSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job = processing.augment_submit(
            version=version, actor=request.user, **params.validated_data
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
