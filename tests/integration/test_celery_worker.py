"""A real Redis and a real `celery worker` process (not eager mode)."""

import pytest
from django.test import Client

from jobs import tasks
from jobs.models import Worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_task_round_trip_through_redis_and_worker(worker_process):
    result = tasks.ping.delay("hello 你好").get(timeout=60)
    assert result["pong"] == "hello 你好"
    assert result["worker"] == worker_process.hostname


def test_request_id_travels_into_the_task(worker_process):
    from audit import context

    token = context.activate(context.RequestContext(request_id="req-propagation-0001"))
    try:
        async_result = tasks.ping.delay()
    finally:
        context.deactivate(token)
    assert async_result.get(timeout=60)["request_id"] == "req-propagation-0001"


def test_heartbeat_describes_the_worker_and_readyz_counts_it(worker_process):
    worker = Worker.objects.get(hostname=worker_process.hostname)
    assert worker.queues == ["cpu", "gpu"]
    assert worker.is_live
    assert worker.gpus == []  # this machine has no GPU
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {"ready": True, "database": "ok", "redis": "ok", "workers": 1}


def test_stopped_worker_is_marked_and_readyz_goes_unready(worker_process):
    from tests.conftest import stop_group

    stop_group(worker_process)
    worker = Worker.objects.get(hostname=worker_process.hostname)
    assert worker.stopped_at is not None and not worker.is_live
    body = Client().get("/readyz").json()
    assert body["workers"] == 0 and body["ready"] is False
