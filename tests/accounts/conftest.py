"""Fixtures for access-control tests: a dataset with a sensitive column, a job and a model
version owned by a Data Scientist, and helpers to share them through the API."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import roles
from datasets_app.models import DatasetVersion
from datasets_app.services import dataset_create
from jobs.models import BaseModel, Job, ModelVersion
from tests.conftest import api_as

SECRET = "110105199003071239"
ROWS = [
    {"instruction": "提取身份证号", "input": f"患者张三，身份证号{SECRET}。", "output": "已记录"},
    {"instruction": "Translate", "input": "高血压", "output": "hypertension"},
]


@pytest.fixture
def private_storage(settings, tmp_path):
    settings.HEARTH_STORAGE_DIR = tmp_path / "storage"
    return settings.HEARTH_STORAGE_DIR


@pytest.fixture
def owner(make_user):
    return make_user("owner", roles.DATA_SCIENTIST)


@pytest.fixture
def colleague(make_user):
    return make_user("colleague", roles.DATA_SCIENTIST)


@pytest.fixture
def dataset(owner):
    return dataset_create(owner=owner, name="ward-7 notes")


@pytest.fixture
def version(private_storage, owner, dataset) -> DatasetVersion:
    """A version whose `input` column is marked sensitive."""
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
    client = api_as(owner)
    response = client.post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"file": SimpleUploadedFile("notes.jsonl", content)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    version_id = response.json()["id"]
    marked = client.patch(
        f"/api/v1/dataset-versions/{version_id}/", {"sensitive_columns": ["input"]}, format="json"
    )
    assert marked.status_code == 200, marked.content
    return DatasetVersion.objects.get(pk=version_id)


@pytest.fixture
def job(owner):
    return Job.objects.create(kind=Job.Kind.TRAINING, owner=owner)


@pytest.fixture
def model_version(owner, job):
    from guardian.shortcuts import assign_perm

    base = BaseModel.objects.create(name="tiny", source="local", location="/nowhere")
    mv = ModelVersion.objects.create(
        owner=owner, name="tiny-job", job=job, base_model=base, method="lora"
    )
    for action in ("view", "change", "delete"):  # what jobs.training.store_model grants
        assign_perm(f"jobs.{action}_modelversion", owner, mv)
    return mv


RESOURCE = {"dataset": "datasets", "job": "jobs", "model_version": "model-versions"}


def permissions_url(kind: str, obj) -> str:
    return f"/api/v1/{RESOURCE[kind]}/{obj.pk}/permissions/"


def share(actor, kind: str, obj, **payload):
    return api_as(actor).post(permissions_url(kind, obj), payload, format="json")
