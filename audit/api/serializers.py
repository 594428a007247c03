from rest_framework import serializers

from ..chain import CHAINED_FIELDS
from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", *CHAINED_FIELDS, "position", "prev_hash", "hash"]
        read_only_fields = fields


class BrokenLinkSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    event_id = serializers.IntegerField(allow_null=True)
    reason = serializers.ChoiceField(choices=["altered", "missing", "inserted", "out of order"])
    message = serializers.CharField()


class ArchiveResultSerializer(serializers.Serializer):
    archive_name = serializers.CharField()
    first_position = serializers.IntegerField()
    last_position = serializers.IntegerField()
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    message = serializers.CharField()


class VerifyResultSerializer(serializers.Serializer):
    """Documentation of `audit-events/verify/` (the view returns the result's dict)."""

    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    start_position = serializers.IntegerField()
    head_position = serializers.IntegerField(allow_null=True)
    head_hash = serializers.CharField()
    broken = BrokenLinkSerializer(allow_null=True)
    archives = ArchiveResultSerializer(many=True)
