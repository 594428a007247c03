from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from guardian.admin import GuardedModelAdmin

from audit.admin import ReadOnlyAdminMixin

from .models import Dataset, DatasetVersion
from .services import dataset_restore


@admin.register(Dataset)
class DatasetAdmin(GuardedModelAdmin):
    """Admins see deleted datasets here and can restore them until the retention purge."""

    list_display = ["name", "owner", "created_at", "deleted_at", "purged_at"]
    list_filter = ["deleted_at", "purged_at"]
    search_fields = ["name"]
    readonly_fields = ["deleted_at", "deleted_by", "purged_at"]
    actions = ["restore"]

    @admin.action(description="Restore selected deleted datasets")
    def restore(self, request, queryset):
        restored = 0
        for dataset in queryset.filter(deleted_at__isnull=False):
            try:
                dataset_restore(dataset=dataset, actor=request.user)
                restored += 1
            except ValidationError as exc:
                self.message_user(request, f"{dataset}: {exc.messages[0]}", messages.ERROR)
        self.message_user(request, f"{restored} dataset(s) restored.")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: versions are immutable."""

    list_display = ["__str__", "operation", "row_count", "sha256", "created_at"]
    list_filter = ["operation"]
