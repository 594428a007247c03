from rest_framework import serializers

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor_username",
            "ip",
            "user_agent",
            "request_id",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "outcome",
            "details",
        ]
        read_only_fields = fields
