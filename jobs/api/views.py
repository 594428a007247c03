from config.api.viewsets import RestrictedReadOnlyViewSet

from ..models import BaseModel, Worker
from .serializers import BaseModelSerializer, WorkerSerializer


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
