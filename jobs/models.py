from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.restrict import RestrictedQuerySet


class WorkerQuerySet(RestrictedQuerySet):
    def live(self):
        cutoff = timezone.now() - timedelta(seconds=settings.HEARTH_WORKER_STALE_SECONDS)
        return self.filter(last_heartbeat__gte=cutoff, stopped_at__isnull=True)


class Worker(models.Model):
    """A Celery worker process, as last reported by its heartbeat."""

    hostname = models.CharField(_("worker"), max_length=255, unique=True)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    queues = models.JSONField(_("queues"), default=list)
    gpus = models.JSONField(_("GPUs"), default=list, help_text=_("GPUs the worker sees"))
    concurrency = models.PositiveIntegerField(_("concurrency"), default=1)
    started_at = models.DateTimeField(_("started"))
    last_heartbeat = models.DateTimeField(_("last heartbeat"), db_index=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        ordering = ["hostname"]
        verbose_name = _("worker")
        verbose_name_plural = _("workers")
        default_permissions = ("view",)

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_live(self) -> bool:
        stale = timedelta(seconds=settings.HEARTH_WORKER_STALE_SECONDS)
        return self.stopped_at is None and timezone.now() - self.last_heartbeat <= stale


class BaseModel(models.Model):
    """A pretrained causal LM that training jobs start from (a local folder or a hub id)."""

    class Source(models.TextChoices):
        LOCAL = "local", _("local path")
        HUB = "hub", _("hub id")

    name = models.CharField(_("name"), max_length=200, unique=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    location = models.CharField(_("path or hub id"), max_length=1000)
    architecture = models.CharField(_("architecture"), max_length=100, blank=True)
    parameter_count = models.BigIntegerField(_("parameters"), null=True, blank=True)
    dtype = models.CharField(_("dtype"), max_length=20, blank=True)
    context_length = models.PositiveIntegerField(_("context length"), null=True, blank=True)
    license = models.CharField(_("licence"), max_length=100, blank=True)
    trust_remote_code = models.BooleanField(_("trust remote code"), default=False)
    is_demo = models.BooleanField(_("demo model"), default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("registered by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("base model")
        verbose_name_plural = _("base models")

    def __str__(self) -> str:
        return self.name
