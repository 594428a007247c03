"""Liveness and readiness probes for load balancers, compose healthchecks and the launcher."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.selectors import live_worker_count


@never_cache
@require_GET
def healthz(request) -> JsonResponse:
    """The process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any driver error means "not ready"
        return f"error: {exc.__class__.__name__}"


def _check_redis() -> str:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


@never_cache
@require_GET
def readyz(request) -> JsonResponse:
    """Database, Redis and live workers. 503 until all three are there."""
    database = _check_database()
    workers = live_worker_count() if database == "ok" else 0
    checks = {"database": database, "redis": _check_redis(), "workers": workers}
    ready = checks["database"] == "ok" and checks["redis"] == "ok" and workers > 0
    return JsonResponse({"ready": ready, **checks}, status=200 if ready else 503)
