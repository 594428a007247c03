from rest_framework import serializers

from ..models import BaseModel, Job, ModelVersion, Worker


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
    kind = serializers.ChoiceField(choices=["training"])
    base_model = serializers.IntegerField()
    dataset_version = serializers.IntegerField()
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


class ModelVersionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    files = serializers.SerializerMethodField()

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
