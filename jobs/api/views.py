import hashlib

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.sharing import SharingMixin
from accounts.restrict import user_can
from audit.services import record, record_denied
from config.api.viewsets import RestrictedModelViewSet, RestrictedReadOnlyViewSet
from datasets_app import storage
from datasets_app.models import Dataset, DatasetVersion

from ..gates import model_version_promote
from ..model_tasks import model_task_submit
from ..models import BaseModel, EvaluationGate, Job, JobLog, JobMetric, ModelVersion, Worker
from ..services import base_model_register, job_cancel
from ..training import training_retry, training_submit
from .serializers import (
    BaseModelRegisterSerializer,
    BaseModelSerializer,
    DetectSerializer,
    EvaluationGateSerializer,
    GenerateSerializer,
    JobSerializer,
    LogSerializer,
    MetricSerializer,
    ModelVersionSerializer,
    PromoteSerializer,
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


def _visible(user, model, pk):
    return model.objects.restrict(user, "view").filter(pk=pk).first()


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
        required = ["base_model", "dataset_version"] if data["kind"] == "training" else []
        required += ["model_version"] if data["kind"] != "training" else []
        required += ["dataset_version"] if data["kind"] == "evaluation" else []
        missing = {name: ["This field is required."] for name in required if name not in data}
        if missing:
            raise exceptions.ValidationError(missing)
        version = self._usable_dataset_version(request, data.get("dataset_version"))
        params = dict(data["params"])
        if data["kind"] != "training":
            model_version = _visible(request.user, ModelVersion, data["model_version"])
            if model_version is None:
                raise exceptions.ValidationError({"model_version": ["No such model version."]})
            if not user_can(request.user, "use", model_version):
                record_denied(
                    actor=request.user, model=ModelVersion, action="use", obj=model_version
                )
                raise exceptions.PermissionDenied("You may not use this model version.")
            if version is None and data["kind"] == "compression":
                # Measured on the training data's eval split, if this user may use it.
                version = self._usable_dataset_version(
                    request, model_version.dataset_version_id, field="model_version"
                )
            job = model_task_submit(
                kind=data["kind"],
                owner=request.user,
                model_version=model_version,
                dataset_version=version,
                params=params,
            )
            return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)
        base_model = _visible(request.user, BaseModel, data["base_model"])
        if base_model is None:
            raise exceptions.ValidationError({"base_model": ["No such base model."]})
        if data.get("preset"):
            params["preset"] = data["preset"]
        job = training_submit(
            owner=request.user, base_model=base_model, dataset_version=version, params=params
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    def _usable_dataset_version(self, request, pk, *, field: str = "dataset_version"):
        if pk is None:
            return None
        version = (
            DatasetVersion.objects.restrict(request.user, "view")
            .filter(pk=pk)
            .select_related("dataset")
            .first()
        )
        if version is None:
            raise exceptions.ValidationError({field: ["No such dataset version."]})
        if not user_can(request.user, "use", version.dataset):
            record_denied(actor=request.user, model=Dataset, action="use", obj=version.dataset)
            raise exceptions.PermissionDenied("You may not use this dataset.")
        return version

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


class PlaygroundBusy(exceptions.APIException):
    status_code = 503
    default_detail = "The playground worker did not answer in time; try again shortly."
    default_code = "playground_busy"


def _wait(result) -> dict:
    from celery.exceptions import TimeoutError as CeleryTimeout
    from django.conf import settings

    try:
        return result.get(timeout=settings.HEARTH_PLAYGROUND_TIMEOUT_SECONDS)
    except CeleryTimeout:
        result.revoke()  # still queued: drop it rather than run it for nobody
        raise PlaygroundBusy from None


class EvaluationGateViewSet(RestrictedModelViewSet):
    """Acceptance thresholds per team (and the site default). Admins edit them; evaluation
    jobs judge against the owner's team gate, else the default."""

    model = EvaluationGate
    serializer_class = EvaluationGateSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer):
        gate = serializer.save()
        record(
            action="jobs.evaluationgate.create",
            actor=self.request.user,
            obj=gate,
            details=serializer.data,
        )

    def perform_update(self, serializer):
        gate = serializer.save()
        record(
            action="jobs.evaluationgate.change",
            actor=self.request.user,
            obj=gate,
            details=serializer.data,
        )


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
    action_permissions = {
        "download": "use",
        "generate": "use",
        "detect_watermark": "use",
        "promote": "change",
    }

    def get_base_queryset(self):
        return ModelVersion.objects.select_related("owner", "base_model", "parent")

    @extend_schema(request=PromoteSerializer, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Move to a stage. Staging and production need a passing latest evaluation; an Admin
        may override a failed gate with a reason (audited as an override)."""
        version = self.get_object()  # permission first: invisible ids answer 404, not 400
        payload = PromoteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        version = model_version_promote(
            version=version, actor=request.user, **payload.validated_data
        )
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(request=GenerateSerializer, responses={200: dict})
    @action(detail=True, methods=["post"])
    def generate(self, request, pk=None):
        """Generate on the playground worker (never in the web process); requests queue."""
        from ..tasks import playground_generate

        version = self.get_object()
        payload = GenerateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        options = payload.validated_data
        result = _wait(playground_generate.apply_async((version.pk, options)))
        record(
            action="jobs.modelversion.generate",
            actor=request.user,
            obj=version,
            details={
                "prompt_sha256": hashlib.sha256(options["prompt"].encode()).hexdigest(),
                "prompt_chars": len(options["prompt"]),
                "max_new_tokens": options["max_new_tokens"],
                "watermark": options["watermark"],
                "new_tokens": result["new_tokens"],
            },
        )
        return Response(result)

    @extend_schema(request=DetectSerializer, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="detect-watermark")
    def detect_watermark(self, request, pk=None):
        """z-score and verdict for a pasted text, with this installation's watermark key."""
        from ..tasks import playground_detect

        version = self.get_object()
        payload = DetectSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        text = payload.validated_data["text"]
        result = _wait(playground_detect.apply_async((version.pk, text)))
        record(
            action="jobs.modelversion.detect_watermark",
            actor=request.user,
            obj=version,
            details={
                "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
                "verdict": result["verdict"],
            },
        )
        return Response(result)

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
