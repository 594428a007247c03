from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = _("Jobs and models")

    def ready(self) -> None:
        from . import worker  # noqa: F401  (connects the Celery worker heartbeat)
