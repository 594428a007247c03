from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import Dataset


@admin.register(Dataset)
class DatasetAdmin(GuardedModelAdmin):
    list_display = ["name", "owner", "created_at", "deleted_at"]
    list_filter = ["deleted_at"]
    search_fields = ["name"]
