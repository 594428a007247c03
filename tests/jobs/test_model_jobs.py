"""Compression, evaluation (gates, promotion) and LoRA merge jobs through the API, a real Redis
and a real Celery worker running the engine on the tiny demo model; the playground through its
own worker, watermark detection included."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts import roles
from audit.models import AuditEvent
from jobs.gates import default_gate
from jobs.models import EvaluationGate, Job, ModelVersion, Worker
from tests.conftest import api_as, wait_until


def _stored_version(owner, demo_model, dataset_version_id, folder: Path, method: str):
    """A model version holding `folder` (encrypted like a trained one), from a finished job."""
    from datasets_app.models import DatasetVersion
    from jobs.training import store_model

    job = Job.objects.create(
        kind=Job.Kind.TRAINING,
        owner=owner,
        status=Job.Status.SUCCEEDED,
        base_model=demo_model,
        dataset_version=DatasetVersion.objects.get(pk=dataset_version_id),
        params={"method": method},
    )
    return store_model(job, folder, name=f"demo-{method}", method=method)


@pytest.fixture
def full_version(demo_model, scientist_data):
    user, version = scientist_data
    return _stored_version(user, demo_model, version, Path(demo_model.location), "full")


@pytest.fixture
def lora_version(demo_model, scientist_data, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    user, version = scientist_data
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(demo_model.location)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(demo_model.location).save_pretrained(tmp_path / "adapter")
    return _stored_version(user, demo_model, version, tmp_path / "adapter", "lora")


def _submit(user, kind: str, version: ModelVersion, dataset_version=None, **params):
    body = {"kind": kind, "model_version": version.pk, "params": params}
    if dataset_version is not None:
        body["dataset_version"] = dataset_version
    return api_as(user).post("/api/v1/jobs/", body, format="json")


def _wait_final(job_id: int, timeout: float = 240) -> Job:
    wait_until(lambda: Job.objects.get(pk=job_id).is_final, timeout, f"job {job_id}")
    job = Job.objects.get(pk=job_id)
    logs = "\n".join(job.logs.values_list("text", flat=True))
    assert job.status == Job.Status.SUCCEEDED, (job.error, logs[-3000:])
    return job


def _capabilities_reported(worker_process) -> None:
    def reported() -> bool:
        worker = Worker.objects.get(hostname=worker_process.hostname)
        return "compression" in worker.capabilities

    wait_until(reported, 120, "the worker's capability probe")


def _load(version: ModelVersion, tmp_path):
    from jobs.engine import inference
    from jobs.model_tasks import materialize

    folder = materialize(version, tmp_path / f"v{version.pk}")
    base = version.base_model.location if version.is_adapter else ""
    return inference.load_model(folder, base_dir=base), folder


@pytest.mark.integration
@pytest.mark.timeout(400)
def test_compression_job_end_to_end(full_version, scientist_data, worker_process, tmp_path):
    user, _version = scientist_data
    _capabilities_reported(worker_process)
    response = _submit(user, "compression", full_version, method="int8_weight_only", latency_runs=3)
    assert response.status_code == 201, response.content
    job = _wait_final(response.json()["id"])
    report = job.report
    original, compressed, comparison = (
        report["original"],
        report["compressed"],
        report["comparison"],
    )
    assert compressed["weights_bytes"] < original["weights_bytes"]
    assert 0 < comparison["size_ratio"] < 1
    assert 0.5 <= comparison["top1_agreement"] <= 1.0
    assert 0 <= comparison["kl_divergence"] < 0.1
    assert comparison["mean_abs_logits_diff"] < 0.5
    for side in (original, compressed):
        assert side["latency_p50_ms"] <= side["latency_p95_ms"]
        assert side["tokens_per_second"] > 0 and side["perplexity"] > 1
    # A new model version, linked to its source, that loads and generates.
    derived = ModelVersion.objects.get(pk=report["model_version"])
    assert derived.parent == full_version and derived.origin == "compression"
    assert derived.method == "int8_weight_only" and derived.card["compression"]["method"]
    assert [v.pk for v in derived.lineage()] == [full_version.pk, derived.pk]
    model, _folder = _load(derived, tmp_path)
    assert type(model.model.layers[0].mlp.up_proj.weight).__name__ == "Int8Tensor"
    detail = api_as(user).get(f"/api/v1/model-versions/{full_version.pk}/").json()
    assert detail["derived"][0]["id"] == derived.pk
    assert AuditEvent.objects.filter(action="jobs.modelversion.create", object_id=str(derived.pk))


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_unsupported_compression_is_refused_with_the_workers_reason(
    full_version, scientist_data, worker_process
):
    user, _version = scientist_data
    _capabilities_reported(worker_process)
    for method, reason in [("bnb_nf4", "CUDA"), ("int4_weight_only", "CUDA"), ("zip", "method")]:
        response = _submit(user, "compression", full_version, method=method)
        assert response.status_code == 400, response.content
        assert reason in str(response.json()), response.json()
    assert not Job.objects.filter(kind="compression").exists()


@pytest.mark.django_db
def test_model_jobs_check_inputs_and_permissions(full_version, scientist_data, make_user):
    user, version = scientist_data
    stranger = make_user("stranger", roles.DATA_SCIENTIST)
    response = _submit(stranger, "evaluation", full_version, version)
    assert response.status_code == 400  # the version is invisible to them: no such version
    assert "model_version" in response.json()["fields"] or "dataset_version" in str(response.json())
    assert _submit(user, "evaluation", full_version).status_code == 400  # no dataset
    bad = _submit(user, "evaluation", full_version, version, scorer="regex", pattern="(")
    assert bad.status_code == 400 and "pattern" in str(bad.json())
    merge = _submit(user, "merge", full_version)
    assert merge.status_code == 400 and "full weights" in str(merge.json())
    assert _submit(user, "evaluation", full_version, version, gate=99999).status_code == 400


@pytest.mark.integration
@pytest.mark.timeout(500)
def test_evaluation_gates_and_promotion(full_version, scientist_data, worker_process, make_user):
    user, version = scientist_data
    admin = make_user("chief", roles.ADMIN)
    promote = f"/api/v1/model-versions/{full_version.pk}/promote/"
    # No evaluation yet: refused.
    assert api_as(user).post(promote, {"stage": "staging"}, format="json").status_code == 400

    # The pilot criterion (accuracy >= 85 %): an untrained model fails it.
    knobs = {"max_examples": 6, "max_new_tokens": 8, "latency_runs": 2, "eval_ratio": 0.5}
    failed = _wait_final(_submit(user, "evaluation", full_version, version, **knobs).json()["id"])
    assert failed.report["passed"] is False
    metrics = failed.report["metrics"]
    assert 0 <= metrics["accuracy"] < 0.85 and metrics["latency_p95_ms"] > 0
    assert set(failed.report["robustness"]) == {"typos", "homophones", "synonyms"}
    evaluation = full_version.evaluations.get()
    assert evaluation.gate == default_gate() and not evaluation.passed
    assert {c["metric"] for c in evaluation.checks} == {"accuracy", "latency_p95_ms"}

    refused = api_as(user).post(promote, {"stage": "production"}, format="json")
    assert refused.status_code == 400 and "failed the gate" in str(refused.json())
    own_override = {"stage": "staging", "override": True, "reason": "demo"}
    assert api_as(user).post(promote, own_override, format="json").status_code == 403
    no_reason = api_as(admin).post(promote, {"stage": "staging", "override": True}, format="json")
    assert no_reason.status_code == 400
    overridden = api_as(admin).post(promote, own_override, format="json")
    assert overridden.status_code == 200 and overridden.json()["stage"] == "staging"
    assert AuditEvent.objects.filter(action="jobs.modelversion.promote_override").exists()

    # A lenient gate passes; promotion then needs no override.
    lenient = EvaluationGate.objects.create(name="smoke", accuracy_min=0.0, latency_p95_ms_max=1e6)
    passed = _submit(user, "evaluation", full_version, version, gate=lenient.pk, **knobs)
    assert _wait_final(passed.json()["id"]).report["passed"] is True
    allowed = api_as(user).post(promote, {"stage": "production"}, format="json")
    assert allowed.status_code == 200 and allowed.json()["stage"] == "production"
    assert allowed.json()["latest_evaluation"]["passed"] is True
    assert AuditEvent.objects.filter(action="jobs.modelversion.promote").exists()


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_lora_merge_job_stores_full_weights(lora_version, scientist_data, worker_process, tmp_path):
    import torch

    user, _version = scientist_data
    job = _wait_final(_submit(user, "merge", lora_version).json()["id"])
    merged = ModelVersion.objects.get(pk=job.report["model_version"])
    names = {f["name"] for f in merged.files}
    assert "model.safetensors" in names and "adapter_config.json" not in names
    assert merged.parent == lora_version and merged.origin == "merge" and merged.method == "full"
    adapter_model, _ = _load(lora_version, tmp_path)
    merged_model, _ = _load(merged, tmp_path)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(adapter_model(ids).logits, merged_model(ids).logits, atol=1e-4)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_playground_generates_and_watermarks_on_its_worker(
    full_version, scientist_data, playground_worker
):
    user, _version = scientist_data
    client = api_as(user)
    base = f"/api/v1/model-versions/{full_version.pk}"
    sampling = {
        "prompt": "第3号病人今天出院。",
        "max_new_tokens": 250,
        "temperature": 1.0,
        "top_p": 1.0,
        "seed": 1,
    }
    plain = client.post(f"{base}/generate/", sampling, format="json")
    assert plain.status_code == 200, plain.content
    body = plain.json()
    assert body["new_tokens"] > 0 and body["latency_ms"] > 0 and body["tokens_per_second"] > 0
    marked = client.post(f"{base}/generate/", {**sampling, "watermark": True}, format="json").json()
    assert marked["watermarked"] is True
    found = client.post(f"{base}/detect-watermark/", {"text": marked["text"]}, format="json").json()
    assert found["watermarked"] is True and found["z_score"] > 4, found
    clean = client.post(f"{base}/detect-watermark/", {"text": body["text"]}, format="json").json()
    assert clean["watermarked"] is False and clean["z_score"] < 4, clean
    events = AuditEvent.objects.filter(action="jobs.modelversion.generate")
    assert events.count() == 2
    assert "第3号" not in str(list(events.values_list("details", flat=True)))  # no prompt text


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_playground_answers_503_when_its_worker_is_busy_or_down(
    full_version, scientist_data, redis_url, celery_app_on, settings
):
    settings.HEARTH_PLAYGROUND_TIMEOUT_SECONDS = 1
    user, _version = scientist_data
    response = api_as(user).post(
        f"/api/v1/model-versions/{full_version.pk}/generate/", {"prompt": "hi"}, format="json"
    )
    assert response.status_code == 503 and "try again" in response.json()["detail"]
