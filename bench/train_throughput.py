"""Fine-tuning throughput: the engine with packing, the engine without, and a plain HF script.

    .venv/bin/python bench/train_throughput.py                       # tiny Qwen2, CPU-sized
    .venv/bin/python bench/train_throughput.py --size 0.5b           # Qwen2.5-0.5B shape, GPU
    .venv/bin/python bench/train_throughput.py --model-dir /models/x --examples 4000

Writes synthetic SFT data (alpaca rows, Chinese and English, response lengths long-tailed:
log-normal) and, without --model-dir, a Qwen2 model with random weights and a tokenizer
trained on that data. Then trains one epoch of full fine-tuning on it three ways, each in its
own process:

  (a) engine, packing     python -m jobs.engine.train, packing=true
  (b) engine, padding     python -m jobs.engine.train, packing=false
  (b') same, exact widths (on a GPU only) pad_to_multiple_of=1: batch widths not rounded up
                          to a multiple of 64, to show what the rounding buys
  (c) plain HF script     the way a user writes it: the same one-turn chat rendered with
                          tokenizer.apply_chat_template, tokenizer(truncation) +
                          DataCollatorForLanguageModeling + Trainer

and prints real (non-padding) tokens per second in steady state (from the first logged step
to the last, so start-up and the first step's warm-up are left out), the training time of the
epoch (Trainer's train_runtime, which includes any checkpoint Trainer writes at the end: the
engine writes none, the plain script has saving off) and the wall time of the whole process.
(c) renders the same text as the engine but trains on every token (the engine masks the
prompt), which costs the same. All runs log every --logging-steps steps: each log reads the loss
off the GPU. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Chinese words join without spaces, English ones with: both as written.
ZH_TEXT = (
    "患者 主诉 胸痛 三天 伴 恶心 既往 体健 冠脉 造影 提示 前降支 狭窄 已行 支架 植入 术后 "
    "恢复 良好 贷款 审批 完成 客户 经理 补充 抵押物 评估 材料 理财 产品 收益 稳定 调整 资产"
)
EN_TEXT = (
    "the patient reports chest pain for three days stent placed recovered well loan approval "
    "completed manager asked for collateral valuation portfolio returns stable adjust allocation "
    "reduce risk transaction flagged suspicious amount beneficiary overnight transfer"
)
ZH, EN = ZH_TEXT.split(), EN_TEXT.split()
INSTRUCTIONS = ["用一句话概括。", "Summarise the note.", "判断是否可疑。", "Classify the text."]
# Model shapes. 0.5b is Qwen2.5-0.5B's (vocab included: the LM head is a real share of the cost).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 0,  # the trained tokenizer's
    },
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
    },
}


def words(rng: random.Random, count: int) -> str:
    """Mixed Chinese and English text."""
    parts = []
    for _ in range(count):
        if rng.random() < 0.5:
            parts.append(rng.choice(ZH))
        else:
            parts.append(" " + rng.choice(EN))
    return "".join(parts).strip()


def make_rows(count: int, seed: int, answer_words: int = 40) -> list[dict[str, str]]:
    rng = random.Random(seed)  # noqa: S311 (reproducible synthetic data)
    rows = []
    for _ in range(count):
        # Log-normal: most answers short, a long tail up to (and past) max_seq_length.
        answer = max(1, int(rng.lognormvariate(math.log(answer_words), 1.0)))
        rows.append(
            {
                "instruction": rng.choice(INSTRUCTIONS),
                "input": words(rng, max(1, int(rng.lognormvariate(math.log(20), 0.8)))),
                "output": words(rng, answer),
            }
        )
    return rows


def build_model(folder: Path, size: str, hidden_size: int | None, rows: list[dict]) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from jobs.engine.demo_model import train_tokenizer

    texts = ["\n".join(row.values()) for row in rows[:2000]]
    tokenizer = train_tokenizer(texts, vocab_size=2048)
    shape = dict(SIZES[size])
    if hidden_size:
        shape["hidden_size"] = hidden_size
        shape["intermediate_size"] = hidden_size * 8 // 3 // 16 * 16
    shape["vocab_size"] = max(shape["vocab_size"], len(tokenizer))
    config = Qwen2Config(
        **shape,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="bfloat16" if torch.cuda.is_available() else "float32",
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: Qwen2 {size}, hidden {shape['hidden_size']}, {params / 1e6:.1f}M parameters")
    return folder


def run_engine(
    work: Path, name: str, args: argparse.Namespace, packing: bool, pad_multiple: int | None = None
) -> dict:
    from jobs.engine.events import read_events
    from jobs.engine.spec import TrainSpec

    folder = work / name
    spec = TrainSpec(
        model_dir=str(args.model_dir),
        data_path=str(work / "data.jsonl"),
        output_dir=str(folder / "out"),
        checkpoint_dir=str(folder / "checkpoints"),
        events_path=str(folder / "events.jsonl"),
        format="alpaca",
        method="full",
        max_seq_length=args.max_seq_length,
        per_device_train_batch_size=args.batch_size if packing else args.unpacked_batch_size,
        num_train_epochs=1,
        learning_rate=1e-5,
        lr_scheduler_type="constant",
        logging_steps=args.logging_steps,
        save_steps=10**9,
        save_total_limit=1,
        packing=packing,
        pad_to_multiple_of=pad_multiple,
    )
    folder.mkdir(parents=True)
    spec.save(folder / "spec.json")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jobs.engine.train", str(folder / "spec.json")],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    events = read_events(spec.events_path)
    steps = [e for e in events if e["type"] == "step"]
    done = next(e for e in events if e["type"] == "done")
    return {
        "steps": done["metrics"]["global_step"],
        "tokens": done["metrics"]["tokens_seen"],
        "steady": [(e["time"], e["tokens_seen"]) for e in steps],
        "train_s": done["train_runtime"],
        "wall_s": wall,
        "gpu_mb": max((e.get("gpu_memory_mb") or 0 for e in steps), default=0),
    }


def run_plain(work: Path, args: argparse.Namespace) -> dict:
    """(c) in a fresh process, like (a) and (b)."""
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            *("--plain-script", str(work), "--model-dir", str(args.model_dir)),
            *("--max-seq-length", str(args.max_seq_length)),
            *("--batch-size", str(args.unpacked_batch_size)),
            *("--logging-steps", str(args.logging_steps)),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["wall_s"] = time.perf_counter() - started
    return figures


def plain_script(
    work: Path, model_dir: Path, max_seq_length: int, batch_size: int, logging_steps: int
) -> None:
    """A user's own fine-tuning script: plain text prompts, padding per batch, stock Trainer."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = [json.loads(line) for line in (work / "data.jsonl").read_text("utf-8").splitlines()]
    texts = [
        tokenizer.apply_chat_template(
            [
                {"role": "user", "content": f"{r['instruction']}\n{r['input']}"},
                {"role": "assistant", "content": r["output"]},
            ],
            tokenize=False,
        )
        for r in rows
    ]
    encoded = tokenizer(texts, truncation=True, max_length=max_seq_length)
    dataset = [{"input_ids": ids} for ids in encoded["input_ids"]]
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    marks: list[tuple[float, int]] = []

    class Marks(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:  # the engine's step events come at the same points
                marks.append((time.time(), state.num_input_tokens_seen))

    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(work / "plain"),
            per_device_train_batch_size=batch_size,
            num_train_epochs=1,
            learning_rate=1e-5,
            lr_scheduler_type="constant",
            bf16=cuda and torch.cuda.is_bf16_supported(),
            save_strategy="no",
            logging_steps=logging_steps,
            logging_first_step=True,
            report_to="none",
            disable_tqdm=True,
            include_num_input_tokens_seen="non_padding",
            dataloader_pin_memory=cuda,
        ),
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[Marks()],
    )
    result = trainer.train()
    print(
        json.dumps(
            {
                "steps": trainer.state.global_step,
                "tokens": trainer.state.num_input_tokens_seen,
                "steady": marks,
                "train_s": result.metrics["train_runtime"],
                "gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0,
            }
        )
    )


def steady_tokens_per_second(marks: list) -> float:
    """Real tokens/s between the first and the last optimizer step (warm-up left out)."""
    if len(marks) < 2:
        return float("nan")
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return (n1 - n0) / max(t1 - t0, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--hidden-size", type=int, help="override the preset's hidden size")
    parser.add_argument("--model-dir", type=Path, help="a model folder instead of a fresh one")
    parser.add_argument("--examples", type=int, default=600)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--unpacked-batch-size",
        type=int,
        help="batch size of (b) and (c) (default --batch-size); packing puts several examples "
        "in a row, so a larger one compares at a similar number of tokens per step",
    )
    parser.add_argument(
        "--logging-steps",
        type=int,
        default=5,
        help="all three runs log (and so read the loss off the GPU) at the same interval",
    )
    parser.add_argument("--answer-words", type=int, default=40, help="median answer length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain-script", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.unpacked_batch_size = args.unpacked_batch_size or args.batch_size
    if args.plain_script:
        plain_script(
            args.plain_script,
            args.model_dir,
            args.max_seq_length,
            args.batch_size,
            args.logging_steps,
        )
        return

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    with tempfile.TemporaryDirectory(prefix="hearth-train-bench-") as tmp:
        work = Path(tmp)
        rows = make_rows(args.examples, args.seed, args.answer_words)
        (work / "data.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8"
        )
        if args.model_dir is None:
            args.model_dir = build_model(work / "model", args.size, args.hidden_size, rows)
        print(
            f"device {device}; {args.examples} examples; max_seq_length {args.max_seq_length}; "
            f"batch {args.batch_size} (unpacked {args.unpacked_batch_size}); "
            "full fine-tune, 1 epoch"
        )
        results = {
            "(a) engine, packing": run_engine(work, "packed", args, packing=True),
            "(b) engine, padding": run_engine(work, "padded", args, packing=False),
        }
        if torch.cuda.is_available():
            results["(b') exact widths"] = run_engine(
                work, "exact", args, packing=False, pad_multiple=1
            )
        results["(c) plain HF script"] = run_plain(work, args)
    print(
        f"{'run':22} {'steps':>6} {'real tokens':>12} {'tokens/s':>10} "
        f"{'train s':>8} {'wall s':>8} {'GPU MiB':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:22} {r['steps']:>6} {r['tokens']:>12,} "
            f"{steady_tokens_per_second(r['steady']):>10,.0f} {r['train_s']:>8.1f} "
            f"{r['wall_s']:>8.1f} {r['gpu_mb']:>8.0f}"
        )


if __name__ == "__main__":
    main()
