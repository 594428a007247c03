from rest_framework.routers import DefaultRouter

from accounts.api.views import ApiTokenViewSet, RoleViewSet, TeamViewSet, UserViewSet
from audit.api.views import AuditEventViewSet
from datasets_app.api.views import DatasetVersionViewSet, DatasetViewSet
from jobs.api.views import (
    BaseModelViewSet,
    EvaluationGateViewSet,
    JobViewSet,
    ModelVersionViewSet,
    WorkerViewSet,
)

router = DefaultRouter()
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("dataset-versions", DatasetVersionViewSet, basename="dataset-version")
router.register("jobs", JobViewSet, basename="job")
router.register("base-models", BaseModelViewSet, basename="base-model")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("evaluation-gates", EvaluationGateViewSet, basename="evaluation-gate")
router.register("workers", WorkerViewSet, basename="worker")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("users", UserViewSet, basename="user")
router.register("roles", RoleViewSet, basename="role")
router.register("teams", TeamViewSet, basename="team")

urlpatterns = router.urls
