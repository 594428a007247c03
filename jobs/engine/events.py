"""The engine's event stream: one JSON object per line, appended to the spec's `events_path`.

Every event is `{"seq", "time", "type", ...}`; `time` is Unix seconds (UTC). Types and fields:

    start       spec (summary), world_size, devices, parameters {trainable, total}, max_steps,
                resumed_from_step (0 on a fresh run), resumed_from (checkpoint path or null)
    data        format, columns (role -> column), records, examples {train, eval}, skipped,
                truncated, tokens {train, eval}, label_tokens, max_length, mean_length,
                max_seq_length, length_histogram (8 buckets of max_seq_length / 8), packing,
                rows (blocks or examples), packing_efficiency (real tokens / token slots)
    step        step, max_steps, epoch, loss, learning_rate, grad_norm, tokens_per_second,
                samples_per_second, tokens_seen, gpu_memory_mb (CUDA only)
    eval        step, eval_loss, perplexity, eval_runtime
    checkpoint  step, path
    done        output_dir, train_runtime, metrics (training); report (model tasks)
    progress    fraction (0..1), message: compression, evaluation and merge jobs
    error       kind ("spec" | "data" | "oom" | "internal"), message, traceback;
                kind "spec" adds field and errors [{field, message}]

Only global rank 0 writes. Each line goes out in one write() on an O_APPEND descriptor and
without fsync, so a tailer sees whole lines (a line without its final newline is still being
written). `seq` continues across restarts of the same job (read back from the file). After a
resume from checkpoint-N, the steps after N that ran before the crash run again and their
events are emitted again: consumers upsert by `step`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from datasets_app.formats.ingest import json_safe  # Django-free, shared with ingestion

EVENT_TYPES = ("start", "data", "step", "eval", "checkpoint", "progress", "done", "error")


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every whole, parseable event line of `path` (a torn last line is skipped)."""
    events = []
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    for line in raw.split(b"\n"):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("seq"), int):
            events.append(event)
    return events


class EventWriter:
    def __init__(self, path: str | Path, *, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._fd: int | None = None
        self.seq = 0
        if not enabled:
            return
        self.seq = max((event["seq"] for event in read_events(self.path)), default=0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # A process killed mid-line left a torn line: end it so our first event starts clean.
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as existing:
                existing.seek(size - 1)
                if existing.read(1) != b"\n":
                    self._write(b"\n")

    def emit(self, type: str, **fields: Any) -> dict[str, Any] | None:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        if self._fd is None:
            return None
        self.seq += 1
        event = {"seq": self.seq, "time": round(time.time(), 3), "type": type, **json_safe(fields)}
        self._write(json.dumps(event, ensure_ascii=False, allow_nan=False).encode() + b"\n")
        return event

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class EventCallback(TrainerCallback):
    """Emits start/step/eval/checkpoint events and prints a short human line per step.

    Throughput counts `state.num_input_tokens_seen`, which the engine's Trainer sets to the
    non-padding tokens of every rank (summed), so tokens_per_second is for the whole job.
    """

    def __init__(self, writer: EventWriter, *, start: dict[str, Any], world_size: int) -> None:
        self.writer = writer
        self.start_fields = start
        self.world_size = world_size
        self.train_metrics: dict[str, float] = {}
        self.last_eval: dict[str, Any] = {}
        self._last_time = 0.0
        self._last_tokens = 0
        self._last_step = 0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._mark(state)
        self.writer.emit(
            "start",
            **self.start_fields,
            max_steps=state.max_steps,
            resumed_from_step=state.global_step,
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        logs = logs or {}
        if "train_runtime" in logs:  # the summary Trainer logs once training ends
            self.train_metrics = dict(logs)
        if "loss" not in logs:
            return
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-9)
        tokens = state.num_input_tokens_seen - self._last_tokens
        rows = (
            (state.global_step - self._last_step)
            * (state.train_batch_size or args.per_device_train_batch_size)
            * args.gradient_accumulation_steps
            * self.world_size
        )
        fields: dict[str, Any] = {
            "step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": round(state.epoch or 0.0, 4),
            "loss": logs["loss"],
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_per_second": round(tokens / elapsed, 1),
            "samples_per_second": round(rows / elapsed, 3),
            "tokens_seen": state.num_input_tokens_seen,
        }
        gpu_memory = _peak_gpu_memory_mb()
        if gpu_memory is not None:
            fields["gpu_memory_mb"] = gpu_memory
        self.writer.emit("step", **fields)
        if state.is_world_process_zero:
            print(
                f"step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f} "
                f"lr {logs.get('learning_rate', 0):.3g} "
                f"tokens/s {fields['tokens_per_second']:.0f}",
                flush=True,
            )
        self._mark(state)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is None:
            return
        self.last_eval = {
            "step": state.global_step,
            "eval_loss": loss,
            "perplexity": math.exp(loss) if loss < 700 else None,  # exp overflows past ~709
            "eval_runtime": (metrics or {}).get("eval_runtime"),
        }
        self.writer.emit("eval", **self.last_eval)
        if state.is_world_process_zero:
            print(f"eval at step {state.global_step}: loss {loss:.4f}", flush=True)
        self._mark(state)  # evaluation time is not training throughput

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # Trainer calls on_save once the checkpoint folder is complete (trainer_state.json last).
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        self.writer.emit("checkpoint", step=state.global_step, path=path)
        self._mark(state)

    def _mark(self, state: TrainerState) -> None:
        self._last_time = time.monotonic()
        self._last_tokens = state.num_input_tokens_seen
        self._last_step = state.global_step


def _peak_gpu_memory_mb() -> float | None:
    """Peak memory allocated by torch on this rank's GPU since the last step event."""
    import torch

    if not torch.cuda.is_available():
        return None
    peak = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    return round(peak, 1)
