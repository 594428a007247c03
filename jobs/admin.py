from django.contrib import admin

from .models import BaseModel, Worker


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ["name", "architecture", "parameter_count", "source", "is_demo"]


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["hostname", "host", "queues", "last_heartbeat", "stopped_at"]
