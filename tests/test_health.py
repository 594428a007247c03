from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Worker
from jobs.services import worker_heartbeat


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_unreachable_redis(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    worker_heartbeat(hostname="w@h", host="h", pid=1, queues=["cpu"], gpus=[], concurrency=1)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error") and response.json()["workers"] == 1


@pytest.mark.django_db
def test_readyz_counts_only_live_workers(client, redis_url, settings):
    settings.REDIS_URL = redis_url
    assert client.get("/readyz").json() == {
        "ready": False,
        "database": "ok",
        "redis": "ok",
        "workers": 0,
    }
    worker_heartbeat(hostname="w@h", host="h", pid=1, queues=["cpu"], gpus=[], concurrency=1)
    Worker.objects.create(
        hostname="old@h",
        host="h",
        pid=2,
        started_at=timezone.now(),
        last_heartbeat=timezone.now() - timedelta(minutes=5),
    )
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["workers"] == 1
