"""The GPU path end to end: API → Redis → Celery worker → GPU lease → engine (torchrun for
several GPUs) → encrypted model version. Skipped without CUDA; run on a GPU machine with

    HEARTH_GPU_MODEL_SIZE=0.5b python -m pytest tests/gpu -s

It prints the figures it measured (tokens/s from the engine's step events)."""

from __future__ import annotations

import json
import os
import statistics

import pytest

from jobs.models import JobMetric, ModelVersion
from tests.conftest import api_as, wait_until

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# Qwen2.5-0.5B's shape with the demo tokenizer's small vocabulary (about 0.36B parameters).
SHAPES = {
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
    },
    "small": {
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}


@pytest.fixture
def gpu_model(db, settings, tmp_path_factory):
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from jobs.engine.demo_model import build_demo_model
    from jobs.services import base_model_register_local

    folder = tmp_path_factory.mktemp("gpu-model")
    build_demo_model(folder)  # tokenizer + config template
    tokenizer = AutoTokenizer.from_pretrained(folder)
    shape = SHAPES[os.environ.get("HEARTH_GPU_MODEL_SIZE", "small")]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shape,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    return base_model_register_local(name=f"gpu-{shape['hidden_size']}", path=folder)


def _train(user, model, version, **params):
    body = {
        "kind": "training",
        "base_model": model.pk,
        "dataset_version": version,
        "params": {
            "max_seq_length": 512,
            "per_device_train_batch_size": 8,
            "learning_rate": 1e-4,
            "logging_steps": 10,
            "save_steps": 100,
            "max_steps": 200,
            "precision": "bf16",
            "packing": True,
            **params,
        },
    }
    response = api_as(user).post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.mark.parametrize(
    ("gpus", "method", "zero"),
    [(1, "lora", 0), (2, "lora", 0), (1, "full", 0), (2, "full", 0), (2, "full", 2)],
    ids=["lora-1", "lora-2", "full-1", "full-2", "full-2-zero2"],
)
def test_gpu_training_through_the_worker(
    gpu_model, scientist_data, worker_process, gpus, method, zero
):
    if torch.cuda.device_count() < gpus:
        pytest.skip(f"needs {gpus} GPUs")
    if zero:
        pytest.importorskip("deepspeed")
    from jobs.models import Job

    user, version = scientist_data
    job_id = _train(
        user, gpu_model, version, method=method, gpus_per_node=gpus, deepspeed_stage=zero
    )
    wait_until(lambda: Job.objects.get(pk=job_id).is_final, 800, "the GPU job")
    job = Job.objects.get(pk=job_id)
    logs = "\n".join(job.logs.values_list("text", flat=True))
    assert job.status == "succeeded", (job.error, logs[-4000:])
    steps = JobMetric.objects.filter(job=job, kind="step").order_by("step")
    speeds = [m.data.get("tokens_per_second") for m in steps if m.data.get("tokens_per_second")]
    memory = max((m.data.get("gpu_memory_mb") or 0) for m in steps)
    version_obj = ModelVersion.objects.get(job=job)
    print(
        json.dumps(
            {
                "gpus": gpus,
                "method": method,
                "zero": zero,
                "model": gpu_model.name,
                "parameters": gpu_model.parameter_count,
                "steps": steps.count(),
                "tokens_per_second_median": statistics.median(speeds) if speeds else None,
                "gpu_memory_mb_peak": memory,
                "gpus_leased": job.gpus,
                "duration_s": job.duration.total_seconds(),
                "model_files": len(version_obj.files),
            }
        )
    )
    assert len(job.gpus) == gpus
