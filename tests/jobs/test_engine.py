"""The training engine (jobs/engine): spec validation, data formatting and packing in process;
training runs as the worker starts them, `python -m jobs.engine.train spec.json`, on the tiny
demo model. No database."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jobs.engine.data import (
    IGNORE,
    PackedCollator,
    PaddingCollator,
    padded_width,
    prepare_data,
    real_tokens,
    render_record,
    resolve_format,
    tokenize,
)
from jobs.engine.demo_model import build_demo_model
from jobs.engine.events import EventWriter, read_events
from jobs.engine.spec import SpecError, TrainSpec
from jobs.engine.train import latest_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ALPACA = [
    {"指令": "判断这笔交易是否可疑。", "输入": "凌晨转账 9800 元", "输出": "可疑"},
    {"指令": "Classify the transaction.", "输入": "Salary, 12,500 CNY", "输出": "normal"},
    {"指令": "用一句话概括。", "输入": "患者男，58岁，胸痛入院。", "输出": "胸痛入院的男性患者。"},
    {"指令": "Translate to Chinese.", "输入": "Line 3 stops at 22:00.", "输出": "3号线22点停。"},
    {"指令": "Summarise.", "输入": "", "输出": "A short note."},
    {"指令": "回答问题", "输入": "一加一等于几？", "输出": "二"},
    {"指令": "Say hello.", "输入": "", "输出": "Hello!"},
    {"指令": "判断情绪", "输入": "服务很好", "输出": "正面"},
]
CHAT = [
    {
        "conversations": [
            {"from": "human", "value": "你好"},
            {"from": "gpt", "value": "你好，有什么可以帮您？"},
            {"from": "human", "value": "Classify: salary 12,500"},
            {"from": "gpt", "value": "normal"},
        ]
    },
    {
        "conversations": [
            {"from": "system", "value": "You are a bank assistant."},
            {"from": "human", "value": "Is 9,800 at 02:13 suspicious?"},
            {"from": "gpt", "value": "Yes."},
        ]
    },
] * 4
TEXT = [
    {"text": "患者男，58岁，因胸痛入院。"},
    {"text": "The maintenance window starts at 22:00."},
    {"text": "工资代发，每月10日入账。"},
    {"text": "Stent placed; recovered well."},
] * 3


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_demo_model(tmp_path_factory.mktemp("engine") / "base")


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def make_spec(folder: Path, model_dir: Path, rows: list[dict[str, Any]], **values) -> TrainSpec:
    folder.mkdir(parents=True, exist_ok=True)
    base = {
        "model_dir": str(model_dir),
        "data_path": str(write_jsonl(folder / "data.jsonl", rows)),
        "output_dir": str(folder / "out"),
        "checkpoint_dir": str(folder / "checkpoints"),
        "events_path": str(folder / "events.jsonl"),
        "max_seq_length": 64,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "lr_scheduler_type": "constant",
    }
    return TrainSpec.from_dict({**base, **values})


def run_engine(spec: TrainSpec, path: Path) -> subprocess.CompletedProcess:
    spec.save(path)
    return subprocess.run(
        [sys.executable, "-m", "jobs.engine.train", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


# ---- spec ----


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"learning_rate": -1e-4}, "learning_rate"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size"),
        ({"save_steps": 0}, "save_steps"),
        ({"max_seq_length": 4096}, "max_seq_length"),  # the demo model has 512 positions
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"warmup_ratio": 0.1, "warmup_steps": 5}, "warmup_ratio"),
        ({"eval_ratio": 0.6}, "eval_ratio"),
        ({"method": "lora", "lora": {"r": 0}}, "lora.r"),
        ({"method": "qlora"}, "method"),  # no CUDA here
        ({"precision": "bf16"}, "precision"),
        ({"precision": "fp16"}, "precision"),
        ({"deepspeed_stage": 1}, "deepspeed_stage"),
        ({"format": "alpaca", "columns": {"messages": "x"}}, "columns.messages"),
        ({"max_steps": 0}, "max_steps"),
        ({"pad_to_multiple_of": 0}, "pad_to_multiple_of"),
    ],
)
def test_impossible_specs_are_refused_with_the_field(tmp_path, model_dir, values, field):
    if torch.cuda.is_available() and field in ("method", "precision"):
        pytest.skip("CPU-only check")
    spec = make_spec(tmp_path, model_dir, ALPACA, **values)
    with pytest.raises(SpecError) as caught:
        spec.validate()
    assert caught.value.field == field, caught.value.errors


def test_spec_types_unknown_fields_and_every_error_at_once(tmp_path, model_dir):
    base = make_spec(tmp_path, model_dir, ALPACA).to_dict()
    for bad, field in [
        ({"max_steps": True}, "max_steps"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"lora": {"rank": 8}}, "lora.rank"),
        ({"epochs": 3}, "epochs"),
    ]:
        with pytest.raises(SpecError) as caught:
            TrainSpec.from_dict({**base, **bad})
        assert caught.value.field == field
    with pytest.raises(SpecError, match="model_dir"):
        TrainSpec.from_dict({k: v for k, v in base.items() if k != "model_dir"})
    spec = TrainSpec.from_dict({**base, "learning_rate": 0, "save_steps": 0, "seed": -1})
    with pytest.raises(SpecError) as caught:
        spec.validate()
    assert {name for name, _ in caught.value.errors} == {"learning_rate", "save_steps", "seed"}
    # The web side validates without the machine-specific checks.
    TrainSpec.from_dict({**base, "precision": "bf16"}).validate(check_environment=False)
    assert TrainSpec.from_dict(base).resolved_precision() in ("bf16", "fp16", "fp32")
    saved = tmp_path / "spec.json"
    spec.save(saved)
    assert TrainSpec.load(saved) == spec


# ---- data ----


def trained_text(tokenizer, example) -> str:
    return tokenizer.decode(
        [t for t, lab in zip(example.input_ids, example.labels, strict=True) if lab != IGNORE]
    )


def prompt_text(tokenizer, example) -> str:
    return tokenizer.decode(
        [t for t, lab in zip(example.input_ids, example.labels, strict=True) if lab == IGNORE]
    )


def test_alpaca_chinese_columns_render_through_the_chat_template_with_prompt_masked(tokenizer):
    fmt, columns = resolve_format(ALPACA, "auto", {})
    assert (fmt, columns) == ("alpaca", {"instruction": "指令", "input": "输入", "output": "输出"})
    example, truncated = tokenize(render_record(ALPACA[0], fmt, columns, tokenizer), tokenizer, 256)
    assert not truncated
    assert trained_text(tokenizer, example) == "可疑<|im_end|>\n"
    prompt = prompt_text(tokenizer, example)
    assert "判断这笔交易是否可疑。\n凌晨转账 9800 元" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    # The prompt is tokenized as at inference: exactly what the chat template gives generate().
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "判断这笔交易是否可疑。\n凌晨转账 9800 元"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    n_prompt = sum(1 for label in example.labels if label == IGNORE)
    assert list(example.input_ids[:n_prompt]) == tokenizer(rendered)["input_ids"]


def test_alpaca_without_a_chat_template_uses_the_plain_layout(model_dir):
    plain = AutoTokenizer.from_pretrained(model_dir)
    plain.chat_template = None
    row = {"question": "一加一等于几？", "answer": "二"}
    fmt, columns = resolve_format([row], "auto", {})
    assert (fmt, columns) == ("alpaca", {"instruction": "question", "output": "answer"})
    example, _ = tokenize(render_record(row, fmt, columns, plain), plain, 64)
    assert prompt_text(plain, example) == "### Instruction:\n一加一等于几？\n\n### Response:\n"
    assert trained_text(plain, example) == "二<|im_end|>"


def test_sharegpt_chat_trains_on_every_assistant_turn_only(tokenizer):
    fmt, columns = resolve_format(CHAT, "auto", {})
    assert (fmt, columns) == ("chat_template", {"messages": "conversations"})
    example, _ = tokenize(render_record(CHAT[0], fmt, columns, tokenizer), tokenizer, 512)
    trained = trained_text(tokenizer, example)
    assert trained == "你好，有什么可以帮您？<|im_end|>\nnormal<|im_end|>\n"
    prompt = prompt_text(tokenizer, example)
    assert "Classify: salary 12,500" in prompt and "normal" not in prompt
    # Segments concatenate to exactly the template's rendering of the whole conversation.
    messages = [
        {"role": "user" if m["from"] == "human" else "assistant", "content": m["value"]}
        for m in CHAT[0]["conversations"]
    ]
    assert tokenizer.decode(example.input_ids) == tokenizer.apply_chat_template(
        messages, tokenize=False
    )


def test_text_and_prompt_completion_formats(tokenizer):
    example, _ = tokenize(
        render_record(TEXT[0], "text", {"text": "text"}, tokenizer), tokenizer, 64
    )
    assert example.labels[0] == IGNORE and list(example.labels[1:]) == list(example.input_ids[1:])
    assert example.input_ids[-1] == tokenizer.eos_token_id
    row = {"prompt": "Q: 1+1=", "completion": " 2"}
    fmt, columns = resolve_format([row], "auto", {})
    example, _ = tokenize(render_record(row, fmt, columns, tokenizer), tokenizer, 64)
    assert (fmt, trained_text(tokenizer, example)) == ("prompt_completion", " 2<|im_end|>")


def test_truncation_and_unusable_rows_are_counted(tmp_path, model_dir, tokenizer):
    rows = [*ALPACA, {"指令": "长" * 300, "输入": "", "输出": "x"}, {"指令": "no answer"}]
    rows.append({"指令": "Repeat.", "输入": "", "输出": "很长的回答" * 40})
    spec = make_spec(tmp_path, model_dir, rows)
    stats = prepare_data(spec, tokenizer).stats
    assert stats["skipped"] == 2  # the prompt fills max_seq_length; no output
    assert stats["truncated"] == 1 and stats["max_length"] == 64
    assert stats["examples"]["train"] == len(ALPACA) + 1


def test_packing_fills_blocks_without_leaking_across_examples(tmp_path, model_dir, tokenizer):
    # Variable lengths, mostly short next to max_seq_length, as in instruction data.
    rows = ALPACA * 4 + [
        {"指令": "Say hi.", "输入": "", "输出": "hi " * n} for n in range(1, 40, 3)
    ]
    packed = prepare_data(
        make_spec(tmp_path, model_dir, rows, packing=True, max_seq_length=128), tokenizer
    )
    plain = prepare_data(make_spec(tmp_path, model_dir, rows, max_seq_length=128), tokenizer)
    assert packed.stats["tokens"] == plain.stats["tokens"]
    assert packed.stats["rows"] < plain.stats["rows"]
    assert packed.stats["packing_efficiency"] > plain.stats["packing_efficiency"]
    blocks = [packed.train[i] for i in range(len(packed.train))]
    assert all(sum(len(e["input_ids"]) for e in b["examples"]) <= 128 for b in blocks)
    assert sum(len(b["examples"]) for b in blocks) == plain.stats["examples"]["train"]

    # The same examples, packed (two blocks of unequal length) or padded one per row, give the
    # same logits: no token attends across examples or to padding.
    pair = sorted(blocks, key=lambda b: sum(len(e["input_ids"]) for e in b["examples"]))[:2]
    assert len(pair[1]["examples"]) > 1
    packed_batch = PackedCollator(tokenizer.pad_token_id)(pair)
    examples = [e for b in pair for e in b["examples"]]
    padded_batch = PaddingCollator(tokenizer.pad_token_id)(examples)
    assert "attention_mask" not in packed_batch and packed_batch["input_ids"].shape[0] == 2
    assert (
        real_tokens(packed_batch)
        == real_tokens(padded_batch)
        == sum(len(e["input_ids"]) for e in examples)
    )
    assert (packed_batch["labels"] != IGNORE).sum() == (padded_batch["labels"] != IGNORE).sum()
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    model.config.use_cache = False
    with torch.no_grad():
        packed_logits = model(
            input_ids=packed_batch["input_ids"], position_ids=packed_batch["position_ids"]
        ).logits
        padded_logits = model(
            input_ids=padded_batch["input_ids"], attention_mask=padded_batch["attention_mask"]
        ).logits
    row = 0
    for block_index, block in enumerate(pair):
        start = 0
        for example in block["examples"]:
            n = len(example["input_ids"])
            torch.testing.assert_close(
                packed_logits[block_index, start : start + n],
                padded_logits[row, :n],
                atol=1e-4,
                rtol=1e-4,
            )
            start += n
            row += 1


def test_batch_widths_round_up_to_the_multiple_within_max_seq_length():
    assert [padded_width(n, 64, 512) for n in (1, 64, 65, 480, 512)] == [64, 64, 128, 512, 512]
    assert padded_width(470, 64, 500) == 500  # the cap is max_seq_length, not the next multiple
    assert padded_width(37, 1, 512) == 37 and padded_width(37, 8, None) == 40


def test_rounded_widths_pad_without_changing_what_trains(tmp_path, model_dir, tokenizer):
    rows = [{"指令": "Say hi.", "输入": "", "输出": "hi " * n} for n in (1, 5, 9)]
    data = prepare_data(make_spec(tmp_path, model_dir, rows, max_seq_length=128), tokenizer)
    examples = [data.train[i] for i in range(len(data.train))]
    longest = max(len(e["input_ids"]) for e in examples)
    exact = PaddingCollator(tokenizer.pad_token_id)(examples)
    rounded = PaddingCollator(tokenizer.pad_token_id, 64, 128)(examples)
    assert exact["input_ids"].shape[1] == longest < 64 == rounded["input_ids"].shape[1]
    for key in exact:
        torch.testing.assert_close(rounded[key][:, :longest], exact[key])
    assert not rounded["attention_mask"][:, longest:].any()
    assert (rounded["labels"][:, longest:] == IGNORE).all()
    assert real_tokens(rounded) == real_tokens(exact)
    assert data.stats["pad_to_multiple_of"] == (64 if torch.cuda.is_available() else 1)


# ---- events and checkpoints ----


def test_event_writer_continues_seq_after_a_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    first = EventWriter(path)
    first.emit("data", examples={"train": 1}, loss=float("nan"))
    first.close()
    with open(path, "ab") as handle:
        handle.write(b'{"seq": 2, "type": "st')  # killed mid-write
    second = EventWriter(path)
    second.emit("step", step=1, loss=1.5)
    second.close()
    assert [(e["seq"], e["type"]) for e in read_events(path)] == [(1, "data"), (2, "step")]
    assert read_events(path)[0]["loss"] is None  # NaN is not JSON
    assert EventWriter(path, enabled=False).emit("step", step=2) is None


def test_latest_checkpoint_skips_incomplete_folders(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    for step, complete in [(2, True), (10, True), (12, False), (9, True)]:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"


# ---- the engine as a process ----


def test_full_fine_tune_emits_events_and_saves_a_model_that_generates(tmp_path, model_dir):
    spec = make_spec(
        tmp_path,
        model_dir,
        ALPACA * 3,
        method="full",
        max_steps=6,
        save_steps=3,
        eval_ratio=0.25,
        packing=True,
        data_sha256="ab" * 32,
    )
    done = run_engine(spec, tmp_path / "spec.json")
    assert done.returncode == 0, done.stderr[-3000:]
    events = read_events(spec.events_path)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events][:2] == ["data", "start"] and events[-1]["type"] == "done"
    start = of_type(events, "start")[0]
    assert start["parameters"]["trainable"] == start["parameters"]["total"] > 0
    assert start["max_steps"] == 6 and start["devices"]
    data = of_type(events, "data")[0]
    assert data["examples"] == {"train": 18, "eval": 6} and data["packing"]
    steps = of_type(events, "step")
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(e["loss"]) and e["tokens_per_second"] > 0 for e in steps)
    assert [e["step"] for e in of_type(events, "eval")] == [3, 6]
    assert of_type(events, "eval")[0]["perplexity"] == pytest.approx(
        math.exp(of_type(events, "eval")[0]["eval_loss"])
    )
    assert [e["path"] for e in of_type(events, "checkpoint")] == [
        str(Path(spec.checkpoint_dir) / f"checkpoint-{n}") for n in (3, 6)
    ]

    out = Path(spec.output_dir)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    card = json.loads((out / "hearth_model_card.json").read_text())
    assert card["method"] == "full" and card["data_sha256"] == "ab" * 32
    assert card["base_model"] == "base" and card["metrics"]["global_step"] == 6
    assert card["metrics"]["eval_loss"] == of_type(events, "done")[0]["metrics"]["eval_loss"]
    model = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True)
    assert model.config.use_cache
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer("判断这笔交易", return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def test_lora_saves_an_adapter_that_loads_on_the_base(tmp_path, model_dir):
    from peft import PeftModel
    from safetensors.torch import load_file

    spec = make_spec(tmp_path, model_dir, CHAT, method="lora", max_steps=3, save_steps=10)
    spec.lora.r = 4
    done = run_engine(spec, tmp_path / "spec.json")
    assert done.returncode == 0, done.stderr[-3000:]
    out = Path(spec.output_dir)
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    weights = load_file(out / "adapter_model.safetensors")
    assert any("q_proj" in k for k in weights) and any("down_proj" in k for k in weights)
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)  # it trained
    start = of_type(read_events(spec.events_path), "start")[0]
    assert 0 < start["parameters"]["trainable"] < start["parameters"]["total"]
    assert json.loads((out / "hearth_model_card.json").read_text())["adapter"] is True
    # The last step (3) is off the save_steps grid: no end-of-training checkpoint beside the
    # final adapter (Trainer would write one).
    assert latest_checkpoint(spec.checkpoint_dir) is None

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    model = PeftModel.from_pretrained(base, out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def test_resume_continues_steps_optimizer_schedule_and_seq(tmp_path, model_dir):
    # constant_with_warmup does not depend on max_steps, so an uninterrupted 4-step run is the
    # reference: matching losses after the resume need the weights, Adam moments, schedule and
    # data order all restored.
    values = {
        "max_steps": 2,
        "save_steps": 2,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": 3,
    }
    spec = make_spec(tmp_path / "run", model_dir, TEXT, **values)
    first = run_engine(spec, tmp_path / "spec.json")
    assert first.returncode == 0, first.stderr[-3000:]
    spec.max_steps, spec.resume = 4, True
    second = run_engine(spec, tmp_path / "spec.json")
    assert second.returncode == 0, second.stderr[-3000:]
    reference = make_spec(tmp_path / "ref", model_dir, TEXT, **{**values, "max_steps": 4})
    assert run_engine(reference, tmp_path / "ref.json").returncode == 0

    events = read_events(spec.events_path)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    starts = of_type(events, "start")
    assert starts[1]["resumed_from_step"] == 2
    assert starts[1]["resumed_from"] == str(Path(spec.checkpoint_dir) / "checkpoint-2")
    resumed_steps = [e for e in events if e["type"] == "step" and e["seq"] > starts[1]["seq"]]
    assert [e["step"] for e in resumed_steps] == [3, 4]
    expected = {e["step"]: e for e in of_type(read_events(reference.events_path), "step")}
    for event in of_type(events, "step"):
        assert event["loss"] == pytest.approx(expected[event["step"]]["loss"], rel=1e-4)
        assert event["learning_rate"] == pytest.approx(expected[event["step"]]["learning_rate"])
    state = json.loads(
        (Path(spec.checkpoint_dir) / "checkpoint-4" / "trainer_state.json").read_text()
    )
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3, 4]
    assert state["global_step"] == 4


@pytest.mark.parametrize(
    "end", [{"max_steps": 4}, {"num_train_epochs": 1}], ids=["max_steps", "epochs"]
)
def test_resuming_a_finished_run_trains_no_further_step(tmp_path, model_dir, end):
    # A worker lost after the last checkpoint but before the final model: the retry resumes from
    # a checkpoint at the last step (12 examples, batch 2: one epoch is 6 steps).
    spec = make_spec(tmp_path, model_dir, TEXT, save_steps=2 if "max_steps" in end else 3, **end)
    assert run_engine(spec, tmp_path / "spec.json").returncode == 0
    last = 4 if "max_steps" in end else 6
    assert latest_checkpoint(spec.checkpoint_dir).name == f"checkpoint-{last}"
    shutil.rmtree(spec.output_dir)
    spec.resume = True
    again = run_engine(spec, tmp_path / "spec.json")
    assert again.returncode == 0, again.stderr[-3000:]
    events = read_events(spec.events_path)
    second = of_type(events, "start")[1]
    assert second["resumed_from_step"] == last
    assert not [e for e in of_type(events, "step") if e["seq"] > second["seq"]]
    done = of_type(events, "done")[-1]
    assert done["metrics"]["global_step"] == last and done["seq"] > second["seq"]
    assert done["metrics"]["train_loss"] > 0
    assert (Path(spec.output_dir) / "adapter_model.safetensors").is_file()


def test_two_ranks_under_torchrun_train_one_epoch_as_one_job(tmp_path, model_dir):
    """The worker's multi-GPU command on CPU (DDP over gloo; NCCL on GPUs): ranks split each
    epoch, tokens are summed over ranks, rank 0 alone writes events and the model."""
    from jobs.training import engine_command

    spec = make_spec(
        tmp_path, model_dir, ALPACA * 4, method="full", num_train_epochs=1, save_steps=3
    )  # the last step (8) is off the save_steps grid: checkpoints at 3 and 6 only
    spec.save(tmp_path / "spec.json")
    done = subprocess.run(
        engine_command(tmp_path / "spec.json", gpus=2),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = read_events(spec.events_path)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # one writer
    start = of_type(events, "start")[0]
    data = of_type(events, "data")[0]
    # 32 examples, 2 per rank and step, 2 ranks: 8 steps, each example seen once.
    assert data["examples"]["train"] == 32
    assert start["world_size"] == 2 and start["max_steps"] == 8
    assert of_type(events, "done")[0]["metrics"]["tokens_seen"] == data["tokens"]["train"]
    assert [e["step"] for e in of_type(events, "checkpoint")] == [3, 6]
    card = json.loads((Path(spec.output_dir) / "hearth_model_card.json").read_text())
    assert card["world_size"] == 2 and card["metrics"]["global_step"] == 8
    assert (Path(spec.output_dir) / "model.safetensors").is_file()


def test_sigterm_stops_training_quickly_without_a_final_model(tmp_path, model_dir):
    spec = make_spec(tmp_path, model_dir, TEXT, max_steps=100_000, save_steps=100_000)
    spec.save(tmp_path / "spec.json")
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs.engine.train", str(tmp_path / "spec.json")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not of_type(read_events(spec.events_path), "step"):
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no step event"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert process.wait(timeout=15) == 143
        assert time.monotonic() - sent < 5
    finally:
        if process.poll() is None:
            process.kill()
    events = read_events(spec.events_path)
    assert not of_type(events, "done") and not of_type(events, "error")
    assert not Path(spec.output_dir).exists()
    assert not Path(spec.checkpoint_dir).exists() or not os.listdir(spec.checkpoint_dir)


def test_invalid_spec_exits_2_and_bad_data_exits_1_with_error_events(tmp_path, model_dir):
    spec = make_spec(tmp_path / "spec", model_dir, TEXT, learning_rate=-1.0)
    done = run_engine(spec, tmp_path / "spec.json")
    assert done.returncode == 2
    (error,) = read_events(spec.events_path)
    assert (error["type"], error["kind"], error["field"]) == ("error", "spec", "learning_rate")

    spec = make_spec(tmp_path / "data", model_dir, [{"id": 1, "label": "x"}])
    done = run_engine(spec, tmp_path / "data.json")
    assert done.returncode == 1
    (error,) = read_events(spec.events_path)
    assert (error["type"], error["kind"]) == ("error", "data")
    assert "Cannot tell the data format" in error["message"]
