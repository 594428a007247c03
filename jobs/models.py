from __future__ import annotations

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
    # What the worker's Python can do, probed once at start (e.g. compression methods: reason
    # why not, or null when supported); the web side refuses jobs no live worker can run.
    capabilities = models.JSONField(_("capabilities"), default=dict, blank=True)
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


class Job(models.Model):
    """A unit of work run by a worker: training, compression, evaluation, or data processing.

    Status changes go through `jobs.services.job_transition`, which writes a `JobTransition` row
    for each one; a cancelled job is never recorded as succeeded.
    """

    class Kind(models.TextChoices):
        TRAINING = "training", _("training")
        COMPRESSION = "compression", _("compression")
        EVALUATION = "evaluation", _("evaluation")
        DESENSITIZE = "desensitize", _("desensitization")
        AUGMENT = "augment", _("augmentation")
        MERGE = "merge", _("LoRA merge")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        CANCELLING = "cancelling", _("cancelling")
        CANCELLED = "cancelled", _("cancelled")
        RETRYING = "retrying", _("retrying")

    FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, db_index=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="jobs",
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    dataset_version = models.ForeignKey(
        "datasets_app.DatasetVersion",
        verbose_name=_("input data"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
    )
    result_dataset_version = models.ForeignKey(
        "datasets_app.DatasetVersion",
        verbose_name=_("produced data"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="produced_by",
    )
    base_model = models.ForeignKey(
        BaseModel,
        verbose_name=_("base model"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
    )
    source_model_version = models.ForeignKey(
        "ModelVersion",
        verbose_name=_("model version"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
    )
    gpus = models.JSONField(_("GPUs in use"), default=list, blank=True)
    # Failures of the user's own job (bad data, bad knobs) count; lost workers do not.
    user_failures = models.PositiveIntegerField(default=0)
    progress = models.FloatField(_("progress"), default=0.0)
    message = models.CharField(_("message"), max_length=500, blank=True)
    error = models.TextField(_("error"), blank=True)
    report = models.JSONField(_("report"), default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(_("submitted"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        permissions = [("cancel_job", _("Can cancel the job"))]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class JobTransition(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    message = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.job_id}: {self.from_status or '-'} → {self.to_status}"


class JobAttempt(models.Model):
    """One run of a job on a worker. A lease, renewed by the running worker, tells the reaper
    whether the attempt is alive: Redis' visibility timeout is never relied on."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        LOST = "lost", _("lost (worker died)")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    worker = models.CharField(max_length=255)
    gpus = models.JSONField(default=list, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(db_index=True)
    outcome = models.CharField(
        max_length=20, choices=Outcome.choices, default=Outcome.RUNNING, db_index=True
    )
    exit_code = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["job", "number"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="unique_attempt_number")
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} attempt {self.number} on {self.worker}"


class JobMetric(models.Model):
    """A training or eval data point. Upserted by (job, kind, step): a step re-run after a
    resume replaces its earlier value, so the series has no duplicates and no offsets."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metrics")
    seq = models.PositiveIntegerField(db_index=True)
    kind = models.CharField(max_length=10)  # step | eval
    step = models.PositiveIntegerField()
    data = models.JSONField(default=dict)
    at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "seq"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["job", "kind", "step"], name="unique_metric_step")
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} {self.kind} {self.step}"


class JobLog(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    seq = models.PositiveIntegerField()
    stream = models.CharField(max_length=10, default="stdout")
    text = models.TextField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "seq"]
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="unique_log_seq")]

    def __str__(self) -> str:
        return f"job {self.job_id} log {self.seq}"


class ModelVersion(models.Model):
    """A trained model: LoRA adapter or full weights (safetensors) plus tokenizer and model card,
    each file stored encrypted like datasets."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="model_versions"
    )
    name = models.CharField(_("name"), max_length=200)
    job = models.OneToOneField(
        Job, null=True, blank=True, on_delete=models.PROTECT, related_name="model_version"
    )
    base_model = models.ForeignKey(
        BaseModel, on_delete=models.PROTECT, related_name="model_versions"
    )
    dataset_version = models.ForeignKey(
        "datasets_app.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="model_versions",
    )

    class Origin(models.TextChoices):
        TRAINING = "training", _("training")
        COMPRESSION = "compression", _("compression")
        MERGE = "merge", _("LoRA merge")

    class Stage(models.TextChoices):
        NONE = "none", _("none")
        STAGING = "staging", _("staging")
        PRODUCTION = "production", _("production")
        ARCHIVED = "archived", _("archived")

    method = models.CharField(_("method"), max_length=30)  # full | lora | qlora | int8_…
    origin = models.CharField(
        _("origin"), max_length=20, choices=Origin.choices, default=Origin.TRAINING
    )
    # The version this one was derived from (compressed or merged); training has none.
    parent = models.ForeignKey(
        "self",
        verbose_name=_("derived from"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derived",
    )
    stage = models.CharField(
        _("stage"), max_length=20, choices=Stage.choices, default=Stage.NONE, db_index=True
    )
    stage_changed_at = models.DateTimeField(_("stage changed"), null=True, blank=True)
    files = models.JSONField(default=list)  # [{"name", "size", "sha256", "storage_key"}]
    card = models.JSONField(_("model card"), default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        permissions = [
            ("override_gate_modelversion", _("Can promote a model version its gate refused"))
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def size_bytes(self) -> int:
        return sum(f["size"] for f in self.files)

    @property
    def is_adapter(self) -> bool:
        return any(f["name"] == "adapter_config.json" for f in self.files)

    def lineage(self) -> list[ModelVersion]:
        """This version and its ancestors, root (the trained version) first."""
        chain, node = [], self
        while node is not None and node not in chain:
            chain.append(node)
            node = node.parent
        return chain[::-1]


class EvaluationGate(models.Model):
    """Acceptance thresholds. One default gate for the site (the pilot criterion: accuracy at
    least 85 %, p95 latency at most 500 ms); a team may have its own, which then applies to the
    model versions of its members. An empty threshold is not checked."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    team = models.OneToOneField(
        "accounts.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="evaluation_gate",
    )
    accuracy_min = models.FloatField(_("minimum accuracy"), null=True, blank=True, default=0.85)
    latency_p95_ms_max = models.FloatField(
        _("maximum p95 latency (ms)"), null=True, blank=True, default=500.0
    )
    perplexity_max = models.FloatField(_("maximum perplexity"), null=True, blank=True)
    robustness_drop_max = models.FloatField(_("maximum robustness drop"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["team__group__name", "name"]
        verbose_name = _("evaluation gate")
        verbose_name_plural = _("evaluation gates")

    def __str__(self) -> str:
        return self.name


class ModelEvaluation(models.Model):
    """One finished evaluation of a model version, judged against the gate in force then (its
    thresholds are copied: editing the gate later does not rewrite history)."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="evaluations"
    )
    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="evaluation")
    dataset_version = models.ForeignKey(
        "datasets_app.DatasetVersion", on_delete=models.PROTECT, related_name="evaluations"
    )
    gate = models.ForeignKey(
        EvaluationGate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    thresholds = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    checks = models.JSONField(default=list)  # [{metric, op, threshold, value, passed}]
    passed = models.BooleanField(_("passed"))
    created_at = models.DateTimeField(_("evaluated"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.model_version} evaluation {self.pk}"
