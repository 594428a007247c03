from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.sharing import SharingMixin
from accounts.restrict import user_can
from audit.services import record, record_denied
from config.api.viewsets import RestrictedReadOnlyViewSet
from datasets_app import storage
from datasets_app.models import Dataset, DatasetVersion

from ..models import BaseModel, Job, JobLog, JobMetric, ModelVersion, Worker
from ..services import base_model_register, job_cancel
from ..training import training_retry, training_submit
from .serializers import (
    BaseModelRegisterSerializer,
    BaseModelSerializer,
    JobSerializer,
    LogSerializer,
    MetricSerializer,
    ModelVersionSerializer,
    TrainingCreateSerializer,
    WorkerSerializer,
)

PAGE = 1000


class BaseModelViewSet(RestrictedReadOnlyViewSet):
    """Registered base models. POST registers one (needs `add_basemodel`: Admin by default):
    a local folder is validated (config, tokenizer, safetensors weights); pickle weights and
    remote code are refused unless explicitly allowed."""

    model = BaseModel
    serializer_class = BaseModelSerializer
    http_method_names = ["get", "post", "head", "options"]

    @extend_schema(request=BaseModelRegisterSerializer, responses={201: BaseModelSerializer})
    def create(self, request):
        payload = BaseModelRegisterSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model = base_model_register(actor=request.user, **payload.validated_data)
        return Response(BaseModelSerializer(model).data, status=status.HTTP_201_CREATED)


class WorkerViewSet(RestrictedReadOnlyViewSet):
    """Celery workers that reported a heartbeat and have not stopped."""

    model = Worker
    serializer_class = WorkerSerializer

    def get_base_queryset(self):
        return Worker.objects.filter(stopped_at__isnull=True)


def _after(request) -> int:
    try:
        return max(int(request.query_params.get("after", 0)), 0)
    except ValueError:
        raise exceptions.ValidationError({"after": ["A sequence number."]}) from None


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("kind", enum=Job.Kind.values),
            OpenApiParameter("status", enum=Job.Status.values),
            OpenApiParameter("owner", str, description="user name"),
        ]
    )
)
class JobViewSet(SharingMixin, RestrictedReadOnlyViewSet):
    """Jobs you own or that are shared with you (all of them for Admin and Auditor).
    POST creates a training job (data jobs start from `dataset-versions/{id}/…`)."""

    model = Job
    serializer_class = JobSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]  # delete: permissions/
    action_permissions = {"cancel": "cancel", "retry": "change"}

    def get_base_queryset(self):
        jobs = Job.objects.select_related("owner", "base_model", "model_version")
        jobs = jobs.prefetch_related("transitions")
        params = self.request.query_params
        if params.get("kind"):
            jobs = jobs.filter(kind=params["kind"])
        if params.get("status"):
            jobs = jobs.filter(status=params["status"])
        if params.get("owner"):
            jobs = jobs.filter(owner__username=params["owner"])
        return jobs

    @extend_schema(request=TrainingCreateSerializer, responses={201: JobSerializer})
    def create(self, request):
        payload = TrainingCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        base_model = (
            BaseModel.objects.restrict(request.user, "view").filter(pk=data["base_model"]).first()
        )
        version = (
            DatasetVersion.objects.restrict(request.user, "view")
            .filter(pk=data["dataset_version"])
            .select_related("dataset")
            .first()
        )
        errors = {}
        if base_model is None:
            errors["base_model"] = ["No such base model."]
        if version is None:
            errors["dataset_version"] = ["No such dataset version."]
        if errors:
            raise exceptions.ValidationError(errors)
        if not user_can(request.user, "use", version.dataset):
            record_denied(actor=request.user, model=Dataset, action="use", obj=version.dataset)
            raise exceptions.PermissionDenied("You may not train on this dataset.")
        params = dict(data["params"])
        if data.get("preset"):
            params["preset"] = data["preset"]
        job = training_submit(
            owner=request.user, base_model=base_model, dataset_version=version, params=params
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = job_cancel(job=self.get_object(), actor=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = self.get_object()
        if job.kind != Job.Kind.TRAINING:
            raise exceptions.ValidationError({"kind": ["Only training jobs can be retried."]})
        job = training_retry(job=job, actor=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("after", int)], responses={200: MetricSerializer(many=True)}
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request, pk=None):
        """Metric points with seq > `after`, oldest first (upserted by step on resume)."""
        job = self.get_object()
        rows = list(
            JobMetric.objects.filter(job=job, seq__gt=_after(request)).order_by("seq")[: PAGE + 1]
        )
        return Response(_page(rows, MetricSerializer))

    @extend_schema(
        parameters=[OpenApiParameter("after", int)], responses={200: LogSerializer(many=True)}
    )
    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        job = self.get_object()
        rows = list(
            JobLog.objects.filter(job=job, seq__gt=_after(request)).order_by("seq")[: PAGE + 1]
        )
        return Response(_page(rows, LogSerializer))


def _page(rows: list, serializer) -> dict:
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return {
        "results": serializer(rows, many=True).data,
        "last_seq": rows[-1].seq if rows else None,
        "has_more": more,
    }


class ModelVersionViewSet(SharingMixin, RestrictedReadOnlyViewSet):
    """Trained models: adapter or full weights, tokenizer and model card, encrypted at rest.
    Downloading needs `use` (owners have it; shared at level use or above)."""

    model = ModelVersion
    serializer_class = ModelVersionSerializer
    action_permissions = {"download": "use"}

    def get_base_queryset(self):
        return ModelVersion.objects.select_related("owner", "base_model")

    @extend_schema(parameters=[OpenApiParameter("file", str, required=True)])
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """One file of the model, decrypted on the fly (audited)."""
        version = self.get_object()
        name = request.query_params.get("file", "")
        entry = next((f for f in version.files if f["name"] == name), None)
        if entry is None:
            raise exceptions.NotFound("No such file in this model version.")
        record(
            action="jobs.modelversion.download",
            actor=request.user,
            obj=version,
            details={"file": name, "sha256": entry["sha256"]},
        )
        stream = storage.open_plaintext(entry["storage_key"])
        response = StreamingHttpResponse(
            stream.iter_chunks(), content_type="application/octet-stream"
        )
        response["Content-Disposition"] = f'attachment; filename="{name.split("/")[-1]}"'
        response["Content-Length"] = str(entry["size"])
        response["X-Content-SHA256"] = entry["sha256"]
        return response
