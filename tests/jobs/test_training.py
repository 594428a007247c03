"""Training jobs through the API, a real Redis and a real Celery worker running the engine."""

from __future__ import annotations

import json
import os
import signal

import pytest

from accounts import roles
from jobs.models import Job, JobAttempt, JobMetric, ModelVersion
from tests.conftest import api_as, wait_until

FAST = {
    "max_seq_length": 64,
    "per_device_train_batch_size": 4,
    "learning_rate": 1e-3,
    "logging_steps": 1,
    "eval_ratio": 0.1,
    "precision": "fp32",
}


def submit(user, model, version_id, **params):
    return api_as(user).post(
        "/api/v1/jobs/",
        {
            "kind": "training",
            "base_model": model.pk,
            "dataset_version": version_id,
            "params": {**FAST, **params},
        },
        format="json",
    )


def wait_final(job_id: int, timeout: float = 240) -> Job:
    wait_until(lambda: Job.objects.get(pk=job_id).is_final, timeout, f"job {job_id}")
    return Job.objects.get(pk=job_id)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"learning_rate": -1}, "learning_rate"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size"),
        ({"precision": "fp16"}, "precision"),
        ({"method": "qlora"}, "method"),
        ({"gpus_per_node": 2}, "gpus_per_node"),
        ({"max_seq_length": 100000}, "max_seq_length"),
        ({"columns": {"instruction": "nope"}}, "columns"),
        ({"output_dir": "/etc"}, "output_dir"),
        ({"lora": {"r": 0}}, "lora.r"),
        ({"preset": "turbo"}, "preset"),
    ],
)
def test_impossible_specs_are_refused_with_field_errors(demo_model, scientist_data, params, field):
    user, version = scientist_data
    response = submit(user, demo_model, version, **params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()
    assert not Job.objects.filter(kind="training").exists()


@pytest.mark.django_db
def test_training_needs_use_permission_on_the_dataset(demo_model, scientist_data, make_user):
    from guardian.shortcuts import assign_perm

    _, version = scientist_data
    colleague = make_user("colleague", roles.DATA_SCIENTIST)
    from datasets_app.models import DatasetVersion

    dataset = DatasetVersion.objects.get(pk=version).dataset
    assert submit(colleague, demo_model, version).status_code == 400  # invisible: no such
    assign_perm("datasets_app.view_dataset", colleague, dataset)
    assert submit(colleague, demo_model, version).status_code == 403
    assign_perm("datasets_app.use_dataset", colleague, dataset)
    assert submit(colleague, demo_model, version, max_steps=1).status_code == 201


def _load_and_generate(version: ModelVersion, tmp_path) -> str:
    from datasets_app import storage
    from datasets_app.crypto import decrypt_to_path, keystore_from_settings

    folder = tmp_path / "model"
    for entry in version.files:
        target = folder / entry["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        decrypt_to_path(storage.path_for(entry["storage_key"]), target, keystore_from_settings())
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if version.method == "lora":
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(version.base_model.location)
        model = PeftModel.from_pretrained(base, folder)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer("第3号病人", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    return tokenizer.decode(out[0])


@pytest.mark.integration
@pytest.mark.timeout(400)
@pytest.mark.parametrize("method", ["lora", "full"])
def test_submit_train_store_and_generate(
    demo_model, scientist_data, worker_process, tmp_path, method
):
    user, version = scientist_data
    response = submit(user, demo_model, version, method=method, max_steps=6, save_steps=3)
    assert response.status_code == 201, response.content
    job = wait_final(response.json()["id"])
    assert job.status == "succeeded", (job.error, job.logs.values_list("text", flat=True)[:50])
    steps = list(JobMetric.objects.filter(job=job, kind="step").values_list("step", flat=True))
    assert steps == [1, 2, 3, 4, 5, 6]
    assert all("loss" in m.data for m in JobMetric.objects.filter(job=job, kind="step"))
    assert JobMetric.objects.filter(job=job, kind="eval").exists()
    assert job.logs.exists()
    api = api_as(user)
    body = api.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["model_version"] and body["progress"] == 1.0
    metrics = api.get(f"/api/v1/jobs/{job.pk}/metrics/?after=0").json()
    assert [r["step"] for r in metrics["results"] if r["kind"] == "step"] == steps
    version_obj = ModelVersion.objects.get(pk=body["model_version"])
    names = {f["name"] for f in version_obj.files}
    assert "hearth_model_card.json" in names
    assert ("adapter_model.safetensors" in names) == (method == "lora")
    assert not any(name.endswith(".bin") for name in names)
    assert _load_and_generate(version_obj, tmp_path).startswith("第3号病人")
    if method == "lora":  # no worker path leaks into the stored adapter
        adapter = json.loads((tmp_path / "model" / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == demo_model.name
    card = next(f for f in version_obj.files if f["name"] == "hearth_model_card.json")
    download = api.get(
        f"/api/v1/model-versions/{version_obj.pk}/download/?file=hearth_model_card.json"
    )
    content = b"".join(download.streaming_content)
    import hashlib

    assert hashlib.sha256(content).hexdigest() == card["sha256"]
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/models/versions/{version_obj.pk}/").content.decode()
    assert "hearth_model_card.json" in page and demo_model.name in page
    assert version_obj.name in browser.get("/models/").content.decode()
    assert version_obj.card.get("data_sha256") or version_obj.card.get("spec")


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_cancel_mid_run_stops_the_process(demo_model, scientist_data, worker_process):
    user, version = scientist_data
    job_id = submit(user, demo_model, version, max_steps=5000, save_steps=1000).json()["id"]
    wait_until(lambda: JobMetric.objects.filter(job_id=job_id).exists(), 180, "first metrics")
    pid = JobAttempt.objects.get(job_id=job_id).pid
    assert api_as(user).post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 202
    job = wait_final(job_id, 60)
    assert job.status == "cancelled"
    assert [t.to_status for t in job.transitions.all()][-2:] == ["cancelling", "cancelled"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not ModelVersion.objects.filter(job_id=job_id).exists()


@pytest.fixture
def short_lease(settings, monkeypatch):
    monkeypatch.setenv("HEARTH_JOB_LEASE_SECONDS", "4")
    settings.HEARTH_JOB_LEASE_SECONDS = 4


@pytest.mark.integration
@pytest.mark.timeout(500)
def test_dead_worker_job_resumes_from_checkpoint(
    short_lease, demo_model, scientist_data, worker_process, request
):
    from jobs.training import reap_lost_attempts

    user, version = scientist_data
    job_id = submit(user, demo_model, version, max_steps=40, save_steps=5).json()["id"]
    wait_until(
        lambda: JobMetric.objects.filter(job_id=job_id, kind="step", step__gte=12).exists(),
        240,
        "training past the second checkpoint",
    )
    engine_pid = JobAttempt.objects.get(job_id=job_id).pid
    os.killpg(worker_process.pid, signal.SIGKILL)  # the whole worker, like a power cut
    worker_process.wait()
    wait_until(lambda: _gone(engine_pid), 30, "the engine to die with its worker")
    wait_until(lambda: reap_lost_attempts() == 1, 30, "the lease to expire")
    job = Job.objects.get(pk=job_id)
    assert job.status == "queued" and job.user_failures == 0
    assert [t.to_status for t in job.transitions.all()][-2:] == ["retrying", "queued"]

    restarted = request.getfixturevalue("second_worker")
    assert restarted
    job = wait_final(job_id, 300)
    assert job.status == "succeeded", job.error
    attempts = list(job.attempts.values_list("outcome", flat=True))
    assert attempts == ["lost", "succeeded"]
    steps = list(
        JobMetric.objects.filter(job_id=job_id, kind="step")
        .order_by("step")
        .values_list("step", flat=True)
    )
    # continuous, no duplicates, no offsets
    assert steps == list(range(1, 41)), _resume_diagnostics(job)
    resumed_from = [
        line
        for line in job.logs.values_list("text", flat=True)
        if "checkpoint" in line.lower() and "resum" in line.lower()
    ]
    assert resumed_from, "the second attempt should resume from a checkpoint"


def _resume_diagnostics(job: Job) -> str:
    """What a failed continuity check needs to be understood: the metric rows past the end,
    the attempts, the transitions and the engine's own log."""
    extra = JobMetric.objects.filter(job=job, kind="step", step__gt=job.params["max_steps"])
    lines = [f"steps past max_steps: {[(m.step, m.seq, m.data) for m in extra]}"]
    lines += [f"attempt {a.number} {a.worker} {a.outcome} pid {a.pid}" for a in job.attempts.all()]
    lines += [f"transition {t}" for t in job.transitions.all()]
    lines += list(job.logs.values_list("text", flat=True))[-120:]
    return "\n".join(lines)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_queued_job_survives_a_redis_restart(
    demo_model, scientist_data, redis_url, celery_app_on, transactional_db, request, settings
):
    """Messages lost with Redis (no persistence) are re-sent; the database is the truth."""
    from datetime import timedelta

    import redis

    from jobs.training import redispatch_stale_queued

    settings.REDIS_URL = redis_url
    user, version = scientist_data
    job_id = submit(user, demo_model, version, max_steps=2).json()["id"]
    client = redis.Redis.from_url(redis_url)
    assert client.llen("gpu") == 1
    client.flushall()  # what a restart without persistence does to the queue
    assert redispatch_stale_queued(older_than=timedelta(0)) == 1
    assert client.llen("gpu") == 1
    request.getfixturevalue("worker_process")
    job = wait_final(job_id)
    assert job.status == "succeeded", job.error


@pytest.mark.django_db
def test_job_list_filters_queue_positions_and_compare(demo_model, scientist_data, make_user):
    from django.test import Client

    user, version = scientist_data
    first = submit(user, demo_model, version, max_steps=1).json()["id"]
    second = submit(user, demo_model, version, max_steps=2, learning_rate=5e-4).json()["id"]
    client = Client()
    client.force_login(user)
    page = client.get("/jobs/?status=queued&kind=training").content.decode()
    assert "#1 in queue" in page and "#2 in queue" in page
    assert client.get("/jobs/?status=succeeded").content.decode().count("in queue") == 0
    compare = client.get(f"/jobs/compare/?ids={first},{second}")
    assert compare.status_code == 200 and 'data-jobs="' in compare.content.decode()
    stranger = Client()
    stranger.force_login(make_user("stranger", roles.DATA_SCIENTIST))
    assert stranger.get(f"/jobs/compare/?ids={first},{second}").status_code == 404
    assert stranger.get(f"/jobs/{first}/").status_code == 404
    assert api_as(user).get(f"/api/v1/jobs/{second}/").json()["queue_position"] == 2


@pytest.mark.django_db
def test_register_base_models_by_path_or_hub_id(make_user, demo_model, tmp_path):
    admin = make_user("platform-admin", roles.ADMIN)
    scientist = make_user("ds", roles.DATA_SCIENTIST)
    url = "/api/v1/base-models/"
    local = {"name": "copy", "source": "local", "location": demo_model.location}
    assert api_as(scientist).post(url, local, format="json").status_code == 403
    created = api_as(admin).post(url, local, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["architecture"] == "Qwen2ForCausalLM"
    assert created.json()["parameter_count"] == demo_model.parameter_count
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = api_as(admin).post(url, {**local, "name": "x", "location": str(empty)}, format="json")
    assert bad.status_code == 400 and "config.json" in bad.json()["fields"]["location"][0]
    hub = {"name": "r1", "source": "hub", "location": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"}
    assert api_as(admin).post(url, hub, format="json").status_code == 201
    wrong = api_as(admin).post(url, {**hub, "name": "r2", "location": "../etc"}, format="json")
    assert wrong.status_code == 400


def test_gpu_leases_never_share_a_gpu(monkeypatch, settings, tmp_path):
    """Two GPUs stand in for the hardware (none here); the locks themselves are real flocks."""
    from jobs import gpus, training

    settings.DATA_DIR = tmp_path
    fake = [
        {"index": 0, "name": "H200", "memory_mib": 1},
        {"index": 1, "name": "H200", "memory_mib": 1},
    ]
    monkeypatch.setattr(gpus, "detect_gpus", lambda: fake)
    with training.GpuLease(1) as first:
        assert first.indices == [0]
        with training.GpuLease(1) as second:
            assert second.indices == [1]
            with pytest.raises(training.GpusBusy):
                training.GpuLease(1).__enter__()
        with training.GpuLease(1) as third:
            assert third.indices == [1]  # released by `second`
    with training.GpuLease(2) as both:
        assert both.indices == [0, 1]
    assert training.GpuLease(0).__enter__().indices == []


@pytest.mark.django_db
def test_a_reused_job_id_never_resumes_another_jobs_checkpoints(demo_model, scientist_data):
    """Ids can repeat after a database reset; the job folder is keyed by submit time too."""
    from datetime import timedelta

    from jobs.training import job_dir

    user, version = scientist_data
    job = Job.objects.get(pk=submit(user, demo_model, version, max_steps=1).json()["id"])
    first = job_dir(job)
    (first / "events.jsonl").write_text('{"seq": 1, "type": "step", "step": 99}\n')
    job.created_at += timedelta(seconds=1)  # the same id, submitted at another time
    assert job_dir(job) != first and not (job_dir(job) / "events.jsonl").exists()
