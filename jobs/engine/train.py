"""The training engine: `python -m jobs.engine.train <spec.json>`, or on N GPUs
`torchrun --nproc_per_node=N -m jobs.engine.train <spec.json>`.

Django-free: reads a TrainSpec (see spec.py), appends events to `spec.events_path` (see
events.py), writes checkpoints to `spec.checkpoint_dir/checkpoint-<step>/` and the final
model (full: safetensors weights; LoRA/QLoRA: a safetensors adapter) + tokenizer +
hearth_model_card.json to `spec.output_dir`. stdout/stderr are the human log only.

Exit codes: 0 done; 1 failed (an `error` event says why); 2 invalid spec (an `error` event with
kind "spec" when the spec names an events file); 143 stopped by SIGTERM (no final model).

SIGTERM (the worker's cancel): during training, every rank stops after the current optimizer
step (ranks agree through an all-reduce so none waits alone in a collective), without a
checkpoint or the final model; before or after training it stops at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    set_seed,
)
from transformers.utils import logging as hf_logging

from .data import DataError, prepare_data, real_tokens
from .events import EventCallback, EventWriter
from .inference import config_dtype
from .spec import SpecError, TrainSpec, module_available

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_SPEC = 2
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process killed by SIGTERM
MODEL_CARD = "hearth_model_card.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


class Terminated(Exception):
    """SIGTERM outside the training loop."""


@dataclass
class _Stop:
    requested: bool = False
    in_training_loop: bool = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        os.write(2, b"SIGTERM received: stopping\n")  # print() is not safe in a signal handler
        if not self.in_training_loop:
            raise Terminated


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The highest checkpoint-<step> folder holding trainer_state.json (Trainer writes it last,
    so a folder without it is a save cut short)."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    complete = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _CHECKPOINT.fullmatch(path.name)) and (path / "trainer_state.json").is_file()
    ]
    return max(complete)[1] if complete else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m jobs.engine.train <spec.json>", file=sys.stderr)
        return EXIT_SPEC
    is_rank_zero = int(os.environ.get("RANK", "0")) == 0
    try:
        spec = TrainSpec.load(argv[0])
        spec.validate()
    except SpecError as exc:
        print(f"invalid spec: {exc}", file=sys.stderr)
        events_path = _events_path_of(argv[0])
        if events_path:
            writer = EventWriter(events_path, enabled=is_rank_zero)
            writer.emit(
                "error",
                kind="spec",
                field=exc.field,
                message=exc.message,
                errors=[{"field": name, "message": text} for name, text in exc.errors],
                traceback=None,
            )
            writer.close()
        return EXIT_SPEC

    writer = EventWriter(spec.events_path, enabled=is_rank_zero)
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop.handle)
    try:
        return _run(spec, writer, stop)
    except Terminated:
        return EXIT_TERMINATED
    except Exception as exc:
        kind = _error_kind(exc)
        traceback.print_exc()
        writer.emit(
            "error",
            kind=kind,
            message=f"{exc.__class__.__name__}: {exc}" if kind == "internal" else str(exc),
            traceback=traceback.format_exc(),
        )
        return EXIT_ERROR
    finally:
        writer.close()
        _close_process_group()


def _run(spec: TrainSpec, writer: EventWriter, stop: _Stop) -> int:
    hf_logging.disable_progress_bar()  # bars are noise in a log file
    set_seed(spec.seed)
    precision = spec.resolved_precision()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    _log(f"precision {precision}, world size {world_size}, method {spec.method}")

    tokenizer = AutoTokenizer.from_pretrained(
        spec.model_dir, trust_remote_code=spec.trust_remote_code
    )
    if tokenizer.pad_token is None:  # padding needs an id; labels mask it out anyway
        tokenizer.pad_token = tokenizer.eos_token
    data = prepare_data(spec, tokenizer)
    writer.emit("data", **data.stats)
    _log(
        f"data: {data.stats['examples']} examples, {data.stats['tokens']['train']} tokens, "
        f"{data.stats['truncated']} truncated, {data.stats['skipped']} skipped, "
        f"packing efficiency {data.stats['packing_efficiency']:.1%}"
    )

    # Before the model: under ZeRO-3, TrainingArguments must exist for from_pretrained to
    # load the weights partitioned.
    args = _training_arguments(spec, precision, has_eval=data.eval is not None)
    model = _load_model(spec, precision)
    trainable, total = _parameter_counts(model)
    events = EventCallback(
        writer,
        start={
            "spec": _spec_summary(spec, precision),
            "world_size": world_size,
            "devices": _device_names(),
            "parameters": {"trainable": trainable, "total": total},
            "resumed_from": None,
        },
        world_size=world_size,
    )
    trainer = _Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=data.collator,
        processing_class=tokenizer,
        callbacks=[events, _StopCallback(stop), _EndOfRun()],
    )
    trainer.remove_callback(PrinterCallback)  # EventCallback prints a readable line instead
    resume_from = latest_checkpoint(spec.checkpoint_dir) if spec.resume else None
    events.start_fields["resumed_from"] = str(resume_from) if resume_from else None
    if resume_from:
        _log(f"resuming from {resume_from}")

    stop.in_training_loop = True
    try:
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        train_loss, train_runtime = result.training_loss, result.metrics.get("train_runtime")
    except _AlreadyTrained:
        _log(f"{resume_from} is at the last step: nothing left to train")
        train_loss, train_runtime = _mean_logged_loss(trainer.state), None
    finally:
        stop.in_training_loop = False
    if stop.requested:
        _log(f"stopped at step {trainer.state.global_step}; no final model saved")
        return EXIT_TERMINATED
    if data.eval is not None and events.last_eval.get("step") != trainer.state.global_step:
        trainer.evaluate()  # the model version's metrics describe the final weights

    trainer.flush_token_count()
    _save(trainer, spec, tokenizer)
    metrics = {
        "train_loss": train_loss,
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "eval_loss": events.last_eval.get("eval_loss"),
        "perplexity": events.last_eval.get("perplexity"),
    }
    if trainer.args.should_save:
        _write_model_card(spec, precision, world_size, metrics, train_runtime)
    writer.emit("done", output_dir=spec.output_dir, train_runtime=train_runtime, metrics=metrics)
    _log(f"done: {spec.output_dir}")
    return EXIT_OK


def _training_arguments(spec: TrainSpec, precision: str, *, has_eval: bool) -> TrainingArguments:
    return TrainingArguments(
        output_dir=spec.checkpoint_dir,
        per_device_train_batch_size=spec.per_device_train_batch_size,
        per_device_eval_batch_size=spec.per_device_train_batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        num_train_epochs=spec.num_train_epochs,
        max_steps=spec.max_steps,
        learning_rate=spec.learning_rate,
        lr_scheduler_type=spec.lr_scheduler_type,
        weight_decay=spec.weight_decay,
        # transformers 5 reads a warmup_steps below 1 as a fraction of the training steps.
        warmup_steps=spec.warmup_steps or spec.warmup_ratio,
        logging_strategy="steps",
        logging_steps=spec.logging_steps,
        logging_first_step=True,  # the UI shows a loss right away
        save_strategy="steps",
        save_steps=spec.save_steps,
        save_total_limit=spec.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=spec.eval_steps or spec.save_steps,
        seed=spec.seed,
        data_seed=spec.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=spec.gradient_checkpointing,
        auto_find_batch_size=spec.auto_find_batch_size,
        include_num_input_tokens_seen="no",  # _Trainer counts real tokens itself
        remove_unused_columns=False,  # our datasets are lists of token ids, not columns
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        # Without it, accelerate sets up torchrun's CPU processes but leaves them undistributed
        # (each rank would train alone).
        use_cpu=not torch.cuda.is_available(),
        deepspeed=_deepspeed_config(spec) if spec.deepspeed_stage else None,
        report_to="none",
        disable_tqdm=True,
    )


def _deepspeed_config(spec: TrainSpec) -> dict[str, Any]:
    zero: dict[str, Any] = {
        "stage": spec.deepspeed_stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
    }
    if spec.deepspeed_offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if spec.deepspeed_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if spec.deepspeed_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True  # a whole final model
    # "auto" values are filled in by transformers from TrainingArguments.
    return {
        "zero_optimization": zero,
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
    }


def _load_model(spec: TrainSpec, precision: str) -> Any:
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    # Full fine-tuning keeps fp32 master weights (bf16/fp16 run as autocast); LoRA freezes
    # the base, so it is loaded in the compute precision and only the adapter stays fp32.
    dtype = torch.float32 if spec.method == "full" else dtypes[precision]
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "use_safetensors": True,
        "trust_remote_code": spec.trust_remote_code,
    }
    if spec.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtypes[precision],
        )
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if dtype != torch.float32 and torch.cuda.is_available() and module_available("flash_attn"):
        kwargs["attn_implementation"] = "flash_attention_2"  # varlen kernels for packed rows
    model = AutoModelForCausalLM.from_pretrained(spec.model_dir, **kwargs)
    # No KV cache in training: it is useless there, and with one the attention mask ignores
    # the position_ids that separate packed examples.
    model.config.use_cache = False
    if spec.method == "full":
        return model

    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if spec.method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=spec.gradient_checkpointing
        )
    targets = spec.lora.target_modules
    config = LoraConfig(
        r=spec.lora.r,
        lora_alpha=spec.lora.alpha,
        lora_dropout=spec.lora.dropout,
        target_modules="all-linear" if targets == "auto" else targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _parameter_counts(model: Any) -> tuple[int, int]:
    if hasattr(model, "get_nb_trainable_parameters"):  # peft: counts 4-bit weights right
        return model.get_nb_trainable_parameters()
    # ZeRO-3 partitions parameters at load: ds_numel is the full size.
    sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in model.parameters()]
    return sum(n for n, grad in sizes if grad), sum(n for n, _ in sizes)


def _save(trainer: Any, spec: TrainSpec, tokenizer: Any) -> None:
    model = trainer.model
    model.config.use_cache = True  # restore the inference default in the saved config
    base_dtype = config_dtype(spec.model_dir)
    if spec.method == "full" and base_dtype is not None and not trainer.is_deepspeed_enabled:
        model.to(base_dtype)  # trained with fp32 master weights; ship the base model's dtype
    trainer.save_model(spec.output_dir)  # peft models save only the adapter, as safetensors
    if trainer.args.should_save:
        # Trainer drops its pickled TrainingArguments there; a model version is safetensors only.
        (Path(spec.output_dir) / "training_args.bin").unlink(missing_ok=True)
        tokenizer.save_pretrained(spec.output_dir)


def _write_model_card(
    spec: TrainSpec,
    precision: str,
    world_size: int,
    metrics: dict[str, Any],
    train_runtime: float | None,
) -> None:
    import peft
    import transformers

    card = {
        "format_version": 1,
        "method": spec.method,
        "adapter": spec.method != "full",
        "base_model": Path(spec.model_dir).name,
        "base_model_dir": spec.model_dir,
        "data_sha256": spec.data_sha256 or None,
        "precision": precision,
        "world_size": world_size,
        "metrics": metrics,
        "train_runtime": train_runtime,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "spec": spec.to_dict(),
    }
    text = json.dumps(card, ensure_ascii=False, indent=2, allow_nan=False, default=str)
    (Path(spec.output_dir) / MODEL_CARD).write_text(text + "\n", encoding="utf-8")


def _spec_summary(spec: TrainSpec, precision: str) -> dict[str, Any]:
    keys = (
        "method",
        "format",
        "max_seq_length",
        "packing",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "num_train_epochs",
        "max_steps",
        "learning_rate",
        "lr_scheduler_type",
        "deepspeed_stage",
        "gradient_checkpointing",
    )
    summary = {key: getattr(spec, key) for key in keys}
    summary["model"] = Path(spec.model_dir).name
    summary["precision"] = precision
    if spec.method != "full":
        summary["lora"] = {"r": spec.lora.r, "alpha": spec.lora.alpha}
    return summary


def _device_names() -> list[str]:
    if not torch.cuda.is_available():
        return ["cpu"]
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _events_path_of(spec_path: str) -> str | None:
    """events_path from a spec that failed validation, when it can be read at all."""
    try:
        value = json.loads(Path(spec_path).read_text(encoding="utf-8")).get("events_path")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value.strip() else None


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, DataError):
        return "data"
    if "out of memory" in str(exc).lower():  # torch.OutOfMemoryError and CPU allocator errors
        return "oom"
    return "internal"


def _close_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _log(message: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[hearth] {message}", flush=True)


class _Trainer(Trainer):
    """Trainer that counts non-padding tokens exactly into state.num_input_tokens_seen.

    Trainer's own "non_padding" count needs an attention mask, which packed rows cannot carry
    (it would hide the example boundaries), and otherwise counts ids != pad_id, which misses
    real tokens whose id is the pad id (pad == eos in many tokenizers). The count stays on the
    device until a step that logs, saves or evaluates: reading it every micro-batch would make
    the host wait for the GPU each time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending_tokens: torch.Tensor | None = None
        self.add_callback(_FlushTokenCount(self))

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        count = real_tokens(inputs)
        self._pending_tokens = (
            count if self._pending_tokens is None else self._pending_tokens + count
        )
        return super().training_step(model, inputs, num_items_in_batch)

    def flush_token_count(self) -> None:
        """Add the tokens counted since the last flush, summed over ranks (a collective: every
        rank calls it at the same steps)."""
        if self._pending_tokens is not None:
            pending = self._pending_tokens.to(self.args.device)
            self.state.num_input_tokens_seen += int(self.accelerator.gather(pending).sum())
            self._pending_tokens = None


class _FlushTokenCount(TrainerCallback):
    def __init__(self, trainer: _Trainer) -> None:
        self.trainer = trainer

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # DefaultFlowCallback, called first, has set these flags for this step on every rank.
        if control.should_log or control.should_save or control.should_evaluate:
            self.trainer.flush_token_count()


class _AlreadyTrained(Exception):
    """The run resumed from a checkpoint at its last step."""


class _EndOfRun(TrainerCallback):
    """Two fixes at the end of a run.

    Resumed from a checkpoint at the last step (a worker lost between it and the final model),
    Trainer would still train one step past the end: it checks for the end only after a step.
    At train begin the checkpoint's weights and state are loaded, so the engine stops there and
    saves them.

    Trainer also saves a checkpoint at the last step whatever save_steps says. The engine writes
    the final model right after it, and a finished job never resumes, so that checkpoint only
    cost time inside the training run and disk: fp32 weights and two Adam moments, 12 bytes per
    parameter in full fine-tuning (5.9 GB and ~6 s for a 0.5B model on an H200). A worker lost
    between the last step and the final model resumes from the last save_steps checkpoint."""

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            raise _AlreadyTrained

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step >= state.max_steps and state.global_step % state.save_steps:
            control.should_save = False


def _mean_logged_loss(state: TrainerState) -> float | None:
    """The training loss of a run that trained no step here, from the checkpoint's log."""
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    return sum(losses) / len(losses) if losses else None


class _StopCallback(TrainerCallback):
    def __init__(self, stop: _Stop) -> None:
        self.stop = stop

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        requested = self.stop.requested
        if dist.is_available() and dist.is_initialized():
            flag = torch.tensor([int(requested)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            requested = bool(flag.item())
        if requested:
            control.should_training_stop = True
            control.should_save = control.should_evaluate = False  # exit fast


if __name__ == "__main__":
    sys.exit(main())
