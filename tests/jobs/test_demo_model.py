"""The tiny demo model: built locally (no download), loadable, registered once."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jobs.engine.demo_model import build_demo_model, is_current_demo
from jobs.engine.model_info import ModelFolderError, inspect_model_dir


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return build_demo_model(tmp_path_factory.mktemp("demo") / "model")


def test_demo_model_is_a_complete_safetensors_folder(demo_dir):
    assert (demo_dir / "model.safetensors").is_file()
    assert not list(demo_dir.glob("*.bin"))
    assert is_current_demo(demo_dir)
    info = inspect_model_dir(demo_dir)
    assert info["architecture"] == "Qwen2ForCausalLM"
    assert info["context_length"] == 512
    config = json.loads((demo_dir / "config.json").read_text())
    assert config["hidden_size"] == 64
    model = AutoModelForCausalLM.from_pretrained(demo_dir)
    assert info["parameter_count"] == sum(p.numel() for p in model.parameters())


def test_demo_model_generates_and_tokenizer_handles_chinese(demo_dir):
    tokenizer = AutoTokenizer.from_pretrained(demo_dir)
    text = "患者男，58岁，因胸痛入院。"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    model = AutoModelForCausalLM.from_pretrained(demo_dir)
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_pickle_only_weights_are_refused(tmp_path, demo_dir):
    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (folder / name).write_bytes((demo_dir / name).read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelFolderError, match="pickle"):
        inspect_model_dir(folder)
    assert inspect_model_dir(folder, allow_pickle=True)["parameter_count"] is None


@pytest.mark.parametrize("missing", ["config.json", "tokenizer.json", "model.safetensors"])
def test_incomplete_folders_are_refused(tmp_path, demo_dir, missing):
    folder = tmp_path / "partial"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        if name != missing:
            (folder / name).write_bytes((demo_dir / name).read_bytes())
    with pytest.raises(ModelFolderError):
        inspect_model_dir(folder)


@pytest.mark.django_db
def test_demo_model_ensure_registers_once(settings, tmp_path, admin_user):
    from audit.models import AuditEvent
    from jobs.models import BaseModel
    from jobs.services import DEMO_MODEL_NAME, demo_model_ensure

    settings.HEARTH_MODELS_DIR = tmp_path
    first = demo_model_ensure()
    second = demo_model_ensure()
    assert first.pk == second.pk and first.is_demo and first.name == DEMO_MODEL_NAME
    assert BaseModel.objects.count() == 1
    assert AuditEvent.objects.filter(action="jobs.basemodel.register").count() == 1
