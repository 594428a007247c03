"""Desensitization and augmentation jobs: validated at submit, run by a real Celery worker,
producing derived versions with lineage and reports."""

from __future__ import annotations

import pytest

from jobs.models import Job
from tests.conftest import api_as, wait_until
from tests.datasets.conftest import ALPACA_ROWS, jsonl_bytes, upload


def _version(client, dataset):
    response = upload(client, dataset, jsonl_bytes(ALPACA_ROWS))
    assert response.status_code == 201, response.content
    return response.json()


def _wait_done(job_id: int) -> Job:
    wait_until(lambda: Job.objects.get(pk=job_id).is_final, 90, f"job {job_id} to finish")
    return Job.objects.get(pk=job_id)


@pytest.mark.django_db
def test_bad_parameters_are_refused_before_queueing(owner, dataset):
    client = api_as(owner)
    version = _version(client, dataset)
    url = f"/api/v1/dataset-versions/{version['id']}/"
    bad_preset = client.post(url + "desensitize/", {"preset": "nope"}, format="json")
    assert bad_preset.status_code == 400 and "preset" in bad_preset.json()["fields"]
    bad_policy = client.post(
        url + "desensitize/",
        {"policy": {"entities": {"ID_CARD": {"operator": "explode"}}}},
        format="json",
    )
    assert bad_policy.status_code == 400 and "policy" in bad_policy.json()["fields"]
    bad_config = client.post(url + "augment/", {"config": {"copies": 0}}, format="json")
    assert bad_config.status_code == 400 and "config" in bad_config.json()["fields"]
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_desensitize_preview_shows_the_effect_without_running(owner, dataset):
    client = api_as(owner)
    version = _version(client, dataset)
    body = client.post(
        f"/api/v1/dataset-versions/{version['id']}/desensitize-preview/",
        {"preset": "pipl"},
        format="json",
    ).json()
    first = body["rows"][0]
    assert "110105199003071239" in first["before"]["input"]
    assert "110105199003071239" not in first["after"]["input"]
    assert "13812345678" not in first["after"]["input"]
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_cancelling_a_queued_job_ends_it_at_once(owner, dataset):
    client = api_as(owner)
    version = _version(client, dataset)
    # In a rolled-back test transaction on_commit never fires: the job stays queued.
    job = client.post(
        f"/api/v1/dataset-versions/{version['id']}/augment/",
        {"config": {"copies": 1, "seed": 1, "ops": {"swap": {"n": 1}}}},
        format="json",
    )
    assert job.status_code == 202, job.content
    cancelled = client.post(f"/api/v1/jobs/{job.json()['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    assert [t["to_status"] for t in cancelled["transitions"]] == ["queued", "cancelled"]
    again = client.post(f"/api/v1/jobs/{job.json()['id']}/cancel/")
    assert again.status_code == 400


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_desensitize_job_produces_a_masked_derived_version(
    owner, dataset, worker_process, make_user
):
    client = api_as(owner)
    version = _version(client, dataset)
    submitted = client.post(
        f"/api/v1/dataset-versions/{version['id']}/desensitize/", {"preset": "pipl"}, format="json"
    )
    assert submitted.status_code == 202, submitted.content
    job = _wait_done(submitted.json()["id"])
    assert job.status == "succeeded", job.error
    derived = client.get(f"/api/v1/dataset-versions/{job.result_dataset_version_id}/").json()
    assert derived["parent"] == version["id"] and derived["operation"] == "desensitize"
    assert derived["number"] == 2 and derived["row_count"] == 3
    assert derived["report"]["entities"]["ID_CARD"] >= 1
    assert derived["report_samples"]  # the owner has view_raw
    content = b"".join(
        client.get(f"/api/v1/dataset-versions/{derived['id']}/download/").streaming_content
    ).decode()
    assert "110105199003071239" not in content and "13812345678" not in content
    assert "6222020200112233446" not in content
    history = [t.to_status for t in job.transitions.all()]
    assert history == ["queued", "running", "succeeded"]


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_augment_job_multiplies_rows_reproducibly(owner, dataset, worker_process):
    client = api_as(owner)
    version = _version(client, dataset)
    config = {"copies": 2, "seed": 7, "ops": {"synonym": {"n": 1}, "swap": {"n": 1}}}
    url = f"/api/v1/dataset-versions/{version['id']}/augment/"
    first = _wait_done(client.post(url, {"config": config}, format="json").json()["id"])
    assert first.status == "succeeded", first.error
    result = first.result_dataset_version
    assert result.row_count == 3 * 3 and result.operation == "augment"
    # Same seed, same input → identical content (an identical derived version).
    second = _wait_done(client.post(url, {"config": config}, format="json").json()["id"])
    assert second.result_dataset_version.sha256 == result.sha256


@pytest.mark.django_db
def test_generator_model_must_be_visible_and_needs_the_context_op(owner, dataset):
    client = api_as(owner)
    version = _version(client, dataset)
    url = f"/api/v1/dataset-versions/{version['id']}/augment/"
    missing = client.post(
        url, {"config": {"ops": {"context": {}}}, "generator_model": 999}, format="json"
    )
    assert missing.status_code == 400 and "generator_model" in missing.json()["fields"]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_context_extension_with_a_registered_model(
    owner, dataset, worker_process, settings, tmp_path
):
    from jobs.services import demo_model_ensure

    settings.HEARTH_MODELS_DIR = tmp_path / "models"
    model = demo_model_ensure()
    client = api_as(owner)
    version = _version(client, dataset)
    submitted = client.post(
        f"/api/v1/dataset-versions/{version['id']}/augment/",
        {
            "config": {"copies": 1, "seed": 3, "columns": ["input"], "ops": {"context": {}}},
            "generator_model": model.pk,
        },
        format="json",
    )
    assert submitted.status_code == 202, submitted.content
    job = _wait_done(submitted.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.result_dataset_version.row_count == 6
    assert job.report["ops"]["context"]["applied"] == 3


@pytest.mark.django_db(transaction=True)
def test_a_tampered_source_file_fails_the_job_and_writes_nothing(owner, dataset, private_storage):
    from datasets_app import processing, storage
    from datasets_app.models import DatasetVersion
    from jobs.runner import run_job

    client = api_as(owner)
    version = DatasetVersion.objects.get(pk=_version(client, dataset)["id"])
    path = storage.path_for(version.storage_key)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01  # one flipped bit in the last chunk
    path.write_bytes(bytes(data))
    job = processing.desensitize_submit(version=version, actor=owner, preset="pipl")
    assert run_job(job.pk, processing.run_desensitize) == "failed"
    job.refresh_from_db()
    assert "Decryption" in job.error or "authentic" in job.error.lower()
    assert [t.to_status for t in job.transitions.all()] == ["queued", "running", "failed"]
    assert dataset.versions.count() == 1
    assert sorted(p.name for p in private_storage.rglob("*.hrth")) == [path.name]


@pytest.mark.django_db(transaction=True)
def test_cancel_while_running_ends_cancelled_never_succeeded(owner, dataset):
    from datasets_app import processing
    from datasets_app.models import DatasetVersion
    from jobs.runner import run_job
    from jobs.services import job_cancel

    client = api_as(owner)
    version = DatasetVersion.objects.get(pk=_version(client, dataset)["id"])
    job = processing.augment_submit(
        version=version, actor=owner, config={"copies": 1, "ops": {"swap": {"n": 1}}}
    )

    def work_then_cancelled(running_job, progress):
        job_cancel(job=running_job, actor=owner)  # the user cancels mid-run
        progress(1.0, "done")  # the next progress point notices
        return {}

    assert run_job(job.pk, work_then_cancelled) == "cancelled"
    job.refresh_from_db()
    assert [t.to_status for t in job.transitions.all()] == [
        "queued",
        "running",
        "cancelling",
        "cancelled",
    ]
    assert job.result_dataset_version is None
