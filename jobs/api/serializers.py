from rest_framework import serializers

from ..models import BaseModel, Worker


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
