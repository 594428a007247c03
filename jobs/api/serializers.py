from rest_framework import serializers

from ..models import BaseModel, EvaluationGate, Job, ModelEvaluation, ModelVersion, Worker


class BaseModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = BaseModel
        fields = [
            "id",
            "name",
            "source",
            "location",
            "architecture",
            "parameter_count",
            "dtype",
            "context_length",
            "license",
            "trust_remote_code",
            "is_demo",
            "created_at",
        ]
        read_only_fields = fields


class WorkerSerializer(serializers.ModelSerializer):
    is_live = serializers.BooleanField(read_only=True)

    class Meta:
        model = Worker
        fields = [
            "id",
            "hostname",
            "host",
            "queues",
            "gpus",
            "concurrency",
            "started_at",
            "last_heartbeat",
            "is_live",
        ]
        read_only_fields = fields


class JobTransitionSerializer(serializers.Serializer):
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    message = serializers.CharField()
    at = serializers.DateTimeField()


class JobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    transitions = JobTransitionSerializer(many=True, read_only=True)
    base_model = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField()

    def get_base_model(self, job) -> dict | None:
        return {"id": job.base_model_id, "name": job.base_model.name} if job.base_model else None

    def get_model_version(self, job) -> int | None:
        version = getattr(job, "model_version", None)
        return version.pk if version else None

    def get_eta_seconds(self, job) -> int | None:
        if job.status != Job.Status.RUNNING or not job.started_at or job.progress <= 0.01:
            return None
        from django.utils import timezone

        elapsed = (timezone.now() - job.started_at).total_seconds()
        return int(elapsed * (1 - job.progress) / job.progress)

    def get_queue_position(self, job) -> int | None:
        if job.status != Job.Status.QUEUED:
            return None
        return (
            Job.objects.filter(
                kind=job.kind, status=Job.Status.QUEUED, created_at__lt=job.created_at
            ).count()
            + 1
        )

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "owner",
            "base_model",
            "model_version",
            "gpus",
            "eta_seconds",
            "queue_position",
            "params",
            "dataset_version",
            "result_dataset_version",
            "source_model_version",
            "progress",
            "message",
            "error",
            "report",
            "created_at",
            "started_at",
            "finished_at",
            "transitions",
        ]
        read_only_fields = fields


class TrainingCreateSerializer(serializers.Serializer):
    """Training (base_model + dataset_version), or a model job (`compression`, `evaluation`,
    `merge`: model_version, plus dataset_version for evaluation and optionally compression)."""

    kind = serializers.ChoiceField(choices=["training", "compression", "evaluation", "merge"])
    base_model = serializers.IntegerField(required=False)
    model_version = serializers.IntegerField(required=False)
    dataset_version = serializers.IntegerField(required=False)
    preset = serializers.CharField(required=False, allow_blank=True)
    params = serializers.DictField(required=False, default=dict)


class MetricSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.CharField()
    step = serializers.IntegerField()
    data = serializers.JSONField()


class LogSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    stream = serializers.CharField()
    text = serializers.CharField()
    at = serializers.DateTimeField()


class EvaluationSerializer(serializers.ModelSerializer):
    gate = serializers.CharField(source="gate.name", default=None, read_only=True)

    class Meta:
        model = ModelEvaluation
        fields = [
            "id",
            "job",
            "dataset_version",
            "gate",
            "thresholds",
            "metrics",
            "checks",
            "passed",
            "created_at",
        ]
        read_only_fields = fields


class ModelVersionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    files = serializers.SerializerMethodField()
    lineage = serializers.SerializerMethodField()
    derived = serializers.SerializerMethodField()
    latest_evaluation = serializers.SerializerMethodField()

    def get_lineage(self, version) -> list[dict]:
        return [
            {"id": v.pk, "name": v.name, "origin": v.origin, "method": v.method}
            for v in version.lineage()
        ]

    def get_derived(self, version) -> list[dict]:
        return [
            {"id": v.pk, "name": v.name, "origin": v.origin, "method": v.method}
            for v in version.derived.all()
        ]

    def get_latest_evaluation(self, version) -> dict | None:
        from ..gates import latest_evaluation

        evaluation = latest_evaluation(version)
        return EvaluationSerializer(evaluation).data if evaluation else None

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "owner",
            "job",
            "base_model",
            "dataset_version",
            "method",
            "origin",
            "parent",
            "stage",
            "stage_changed_at",
            "lineage",
            "derived",
            "latest_evaluation",
            "files",
            "card",
            "metrics",
            "created_at",
        ]
        read_only_fields = fields

    def get_files(self, version) -> list[dict]:
        return [{k: f[k] for k in ("name", "size", "sha256")} for f in version.files]


class BaseModelRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    source = serializers.ChoiceField(choices=BaseModel.Source.choices, default="local")
    location = serializers.CharField(
        max_length=1000, help_text="A folder on the workers' shared disk, or a hub id (org/name)."
    )
    allow_pickle = serializers.BooleanField(default=False)
    trust_remote_code = serializers.BooleanField(default=False)


class PromoteSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=ModelVersion.Stage.choices)
    override = serializers.BooleanField(default=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class GenerateSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=20000, trim_whitespace=False)
    system = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    chat_template = serializers.BooleanField(default=True)
    temperature = serializers.FloatField(default=0.7, min_value=0.0, max_value=2.0)
    top_p = serializers.FloatField(default=0.9, min_value=0.01, max_value=1.0)
    max_new_tokens = serializers.IntegerField(default=64, min_value=1, max_value=2048)
    watermark = serializers.BooleanField(default=False)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)


class DetectSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=100000, trim_whitespace=False)


class EvaluationGateSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvaluationGate
        fields = [
            "id",
            "name",
            "team",
            "accuracy_min",
            "latency_p95_ms_max",
            "perplexity_max",
            "robustness_drop_max",
            "updated_at",
        ]
        read_only_fields = ["id", "updated_at"]
