from config.api.viewsets import RestrictedModelViewSet

from ..models import Dataset
from ..services import dataset_create, dataset_soft_delete, dataset_update
from .serializers import DatasetSerializer


class DatasetViewSet(RestrictedModelViewSet):
    """Datasets you own, that are shared with you, or all of them for Admin and Auditor."""

    model = Dataset
    serializer_class = DatasetSerializer

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
