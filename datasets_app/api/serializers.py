from rest_framework import serializers

from ..models import Dataset, DatasetVersion


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "created_at",
            "updated_at",
            "latest_version",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at", "latest_version"]

    def get_latest_version(self, dataset) -> int | None:
        latest = dataset.versions.order_by("-number").values_list("number", flat=True).first()
        return latest


class DatasetVersionSerializer(serializers.ModelSerializer):
    """A version's metadata. `report_samples` (raw before/after pairs) only with `view_raw`."""

    created_by = serializers.CharField(source="created_by_username", read_only=True)
    parent = serializers.PrimaryKeyRelatedField(read_only=True)
    report_samples = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "dataset",
            "number",
            "parent",
            "operation",
            "parameters",
            "created_by",
            "created_at",
            "original_filename",
            "source_format",
            "source_encoding",
            "source_sha256",
            "sha256",
            "size_bytes",
            "stored_bytes",
            "row_count",
            "schema",
            "validation",
            "report",
            "report_samples",
            "sensitive_columns",
        ]
        read_only_fields = [f for f in fields if f != "sensitive_columns"]

    def get_report_samples(self, version) -> list | None:
        return version.report_samples if self.context.get("can_view_raw") else None


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class DesensitizeSerializer(serializers.Serializer):
    preset = serializers.CharField(required=False, allow_blank=True)
    policy = serializers.JSONField(required=False)

    def validate(self, attrs):
        if not attrs.get("preset") and not attrs.get("policy"):
            raise serializers.ValidationError("Give a preset, a policy, or both.")
        return attrs


class AugmentSerializer(serializers.Serializer):
    config = serializers.JSONField()
    generator_model = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="A base model whose continuations the `context` op appends.",
    )
