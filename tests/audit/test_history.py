"""The History of a dataset (with its versions), a job and a model version: the events about it,
for those who may view it."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import roles
from audit.selectors import object_history
from audit.services import record
from datasets_app.services import dataset_create
from jobs.models import BaseModel, Job, ModelVersion
from tests.conftest import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(make_user):
    return make_user("owner", roles.DATA_SCIENTIST)


@pytest.fixture
def stranger(make_user):
    return make_user("stranger", roles.DATA_SCIENTIST)


@pytest.fixture
def dataset(settings, tmp_path, owner):
    settings.HEARTH_STORAGE_DIR = tmp_path / "storage"
    dataset = dataset_create(owner=owner, name="病区七 notes")
    row = {"instruction": "翻译", "input": "高血压", "output": "hypertension"}
    response = api_as(owner).post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"file": SimpleUploadedFile("n.jsonl", (json.dumps(row) + "\n").encode())},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return dataset


@pytest.fixture
def job(owner):
    job = Job.objects.create(kind=Job.Kind.TRAINING, owner=owner)
    record(action="jobs.job.submit", actor=owner, obj=job)
    return job


@pytest.fixture
def model_version(owner, job):
    base = BaseModel.objects.create(name="tiny", source="local", location="/nowhere")
    version = ModelVersion.objects.create(
        owner=owner, name="tiny-job", job=job, base_model=base, method="lora"
    )
    record(action="jobs.modelversion.create", obj=version)
    return version


def test_a_dataset_history_includes_its_versions(dataset, owner):
    actions = [e.action for e in object_history(user=owner, obj=dataset)]
    assert actions[0] == "datasets_app.version.upload"  # newest first
    assert "datasets_app.dataset.create" in actions


def test_the_owner_sees_the_history_tab_on_the_dataset_page(client, dataset, owner):
    client.force_login(owner)
    response = client.get(f"/datasets/{dataset.pk}/")
    assert response.status_code == 200
    assert {e.action for e in response.context["history"]} >= {
        "datasets_app.dataset.create",
        "datasets_app.version.upload",
    }
    page = response.content.decode()
    assert 'id="audit-history"' in page and "datasets_app.version.upload" in page


def test_someone_who_cannot_see_the_dataset_gets_no_history(client, dataset, stranger):
    assert list(object_history(user=stranger, obj=dataset)) == []
    client.force_login(stranger)
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 404


def test_an_auditor_sees_the_history(dataset, make_user):
    auditor = make_user("audrey", roles.AUDITOR)
    assert object_history(user=auditor, obj=dataset).exists()


def test_a_job_page_has_its_history(client, job, owner):
    client.force_login(owner)
    response = client.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    assert [e.action for e in response.context["history"]] == ["jobs.job.submit"]
    assert 'id="audit-history"' in response.content.decode()


def test_a_model_version_page_has_its_history(client, model_version, owner):
    from guardian.shortcuts import assign_perm

    assign_perm("jobs.view_modelversion", owner, model_version)
    client.force_login(owner)
    response = client.get(f"/models/versions/{model_version.pk}/")
    assert response.status_code == 200
    assert [e.action for e in response.context["history"]] == ["jobs.modelversion.create"]


def test_history_is_limited(job, owner):
    for _ in range(5):
        record(action="jobs.job.view", actor=owner, obj=job)
    assert len(object_history(user=owner, obj=job, limit=3)) == 3


def test_history_does_not_mix_objects(job, owner):
    other = Job.objects.create(kind=Job.Kind.TRAINING, owner=owner)
    record(action="jobs.job.cancel", actor=owner, obj=other)
    assert [e.action for e in object_history(user=owner, obj=job)] == ["jobs.job.submit"]
