from django.contrib import admin

from .models import AuditCheckpoint, AuditEvent


class ReadOnlyAdminMixin:
    """For records that must not change through the admin site either."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: the audit trail is append-only."""

    list_display = [
        "position",
        "created_at",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "outcome",
    ]
    list_filter = ["outcome", "action"]
    search_fields = ["actor_username", "action", "object_repr", "request_id"]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Where retention cut the chain; written only by the archive task."""

    list_display = ["created_at", "archive_name", "first_position", "last_position", "count"]
