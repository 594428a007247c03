from rest_framework import serializers

from ..models import BaseModel, Job, Worker


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

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "owner",
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
