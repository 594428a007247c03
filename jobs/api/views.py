from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api.viewsets import RestrictedReadOnlyViewSet

from ..models import BaseModel, Job, Worker
from ..services import job_cancel
from .serializers import BaseModelSerializer, JobSerializer, WorkerSerializer


class BaseModelViewSet(RestrictedReadOnlyViewSet):
    """Registered base models (registration by API arrives with training jobs)."""

    model = BaseModel
    serializer_class = BaseModelSerializer


class WorkerViewSet(RestrictedReadOnlyViewSet):
    """Celery workers that reported a heartbeat and have not stopped."""

    model = Worker
    serializer_class = WorkerSerializer

    def get_base_queryset(self):
        return Worker.objects.filter(stopped_at__isnull=True)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("kind", enum=Job.Kind.values),
            OpenApiParameter("status", enum=Job.Status.values),
            OpenApiParameter("owner", str, description="user name"),
        ]
    )
)
class JobViewSet(RestrictedReadOnlyViewSet):
    """Jobs you own or that are shared with you (all of them for Admin and Auditor)."""

    model = Job
    serializer_class = JobSerializer
    action_permissions = {"cancel": "cancel"}

    def get_base_queryset(self):
        jobs = Job.objects.select_related("owner").prefetch_related("transitions")
        params = self.request.query_params
        if params.get("kind"):
            jobs = jobs.filter(kind=params["kind"])
        if params.get("status"):
            jobs = jobs.filter(status=params["status"])
        if params.get("owner"):
            jobs = jobs.filter(owner__username=params["owner"])
        return jobs

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = job_cancel(job=self.get_object(), actor=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
