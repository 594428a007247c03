"""The training job spec: what `python -m jobs.engine.train <spec.json>` reads.

Django-free and cheap to import (no torch at module level), so the web side can build and
validate a spec with `validate(check_environment=False)` and map `SpecError.field` (a dotted
name such as "lora.r") to API field errors; the engine validates again, with the environment
checks (files, CUDA, bitsandbytes, DeepSpeed), on the machine that runs the job.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

FORMATS = ("auto", "chat_template", "alpaca", "text", "prompt_completion")
METHODS = ("full", "lora", "qlora")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEEPSPEED_STAGES = (0, 2, 3)
# transformers' SchedulerType values that need nothing but the step count (no eval metric).
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "cosine_with_min_lr",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "warmup_stable_decay",
)
# The column roles each format reads; `columns` maps a role to the dataset's column name.
COLUMN_ROLES = {
    "chat_template": ("messages",),
    "alpaca": ("instruction", "input", "output", "system"),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
}
MIN_SEQ_LENGTH = 16
# Padding rows to a multiple of 64 on a GPU bounds the distinct batch shapes to
# max_seq_length / 64. SDPA's cuDNN attention builds an execution plan for every new sequence
# length: with exact widths it cost ~2 ms of CPU per layer call and the GPU waited for it (H200,
# 0.5B, batch 16: median step 261 ms; rounded: 101 ms, 0.11 ms per call; bench/train_throughput.py).
# Packed rows are already nearly max_seq_length wide, so few shapes: they stay exact (rounding
# them gained nothing for full fine-tuning and cost LoRA 8 % there).
GPU_PAD_MULTIPLE = 64
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SpecError(ValueError):
    """An invalid spec. `field` is a dotted name ("" for the spec as a whole); `errors` holds
    every (field, message) found, the first of which is `field`/`message`."""

    def __init__(
        self, field: str, message: str, errors: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.errors = errors or [(field, message)]


T = TypeVar("T", bound="JsonSpec")


class JsonSpec:
    """Loading and saving of the engine's spec dataclasses: parsed JSON is checked for field
    names and JSON types (not values; `validate()` does those). `_nested_specs` maps a field to
    the dataclass its JSON object becomes."""

    _nested_specs: typing.ClassVar[dict[str, type]] = {}

    @classmethod
    def from_dict(cls: type[T], data: Any) -> T:
        if not isinstance(data, dict):
            raise SpecError("", "the spec must be a JSON object")
        values = _typed_fields(cls, data, prefix="")
        for name, nested in cls._nested_specs.items():
            if isinstance(values.get(name), dict):
                values[name] = nested(**_typed_fields(nested, values[name], prefix=f"{name}."))
        try:
            return cls(**values)
        except TypeError as exc:  # a required field is missing
            missing = [
                f.name
                for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
                and f.name not in values
            ]
            raise SpecError(missing[0] if missing else "", "this field is required") from exc

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SpecError("", f"cannot read the spec file {path}: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )


@dataclass
class LoraSpec:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "auto"  # "auto" = every linear layer but the LM head


@dataclass
class TrainSpec(JsonSpec):
    model_dir: str
    data_path: str
    output_dir: str
    checkpoint_dir: str
    events_path: str
    format: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)
    max_seq_length: int = 2048
    eval_ratio: float = 0.0
    method: str = "lora"
    lora: LoraSpec = field(default_factory=LoraSpec)
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    num_train_epochs: float = 3.0
    max_steps: int = -1  # -1: run num_train_epochs
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 3
    eval_steps: int | None = None  # None: evaluate at every save
    seed: int = 42
    precision: str = "auto"
    gradient_checkpointing: bool = False
    auto_find_batch_size: bool = False
    packing: bool = False
    # Unpacked batch widths are rounded up to a multiple of this (None: 64 on a GPU, 1 on CPU;
    # see GPU_PAD_MULTIPLE). Not a web form field: a benchmark knob.
    pad_to_multiple_of: int | None = None
    resume: bool = False
    deepspeed_stage: int = 0
    deepspeed_offload: bool = False
    nodes: int = 1
    gpus_per_node: int = 1
    trust_remote_code: bool = False
    data_sha256: str = ""

    _nested_specs: typing.ClassVar[dict[str, type]] = {"lora": LoraSpec}

    # ---- validation ----

    def validate(self, *, check_environment: bool = True) -> None:
        """Raise SpecError for impossible values. `check_environment` adds the checks that depend
        on the machine running the job: the model and data files, CUDA, bitsandbytes, DeepSpeed."""
        errors = self._value_errors()
        if check_environment:
            errors += self._environment_errors()
        model_limit = self.model_max_positions()
        if model_limit and self.max_seq_length > model_limit:
            errors.append(
                (
                    "max_seq_length",
                    f"{self.max_seq_length} is longer than the model's context "
                    f"(max_position_embeddings = {model_limit})",
                )
            )
        if errors:
            raise SpecError(*errors[0], errors=errors)

    def _value_errors(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []

        def need(ok: bool, name: str, message: str) -> None:
            if not ok:
                errors.append((name, message))

        for name in ("model_dir", "data_path", "output_dir", "checkpoint_dir", "events_path"):
            need(bool(getattr(self, name).strip()), name, "this field is required")
        need(self.format in FORMATS, "format", f"must be one of {', '.join(FORMATS)}")
        roles = COLUMN_ROLES.get(self.format) or sorted(
            {role for all_roles in COLUMN_ROLES.values() for role in all_roles}
        )
        for role, column in self.columns.items():
            need(role in roles, f"columns.{role}", f"unknown role for {self.format}: {role}")
            need(bool(column.strip()), f"columns.{role}", "the column name is empty")
        need(
            self.max_seq_length >= MIN_SEQ_LENGTH,
            "max_seq_length",
            f"must be at least {MIN_SEQ_LENGTH}",
        )
        need(0 <= self.eval_ratio <= 0.5, "eval_ratio", "must be between 0 and 0.5")
        need(
            self.pad_to_multiple_of is None or 1 <= self.pad_to_multiple_of <= 1024,
            "pad_to_multiple_of",
            "must be between 1 and 1024",
        )
        need(self.method in METHODS, "method", f"must be one of {', '.join(METHODS)}")
        if self.method in ("lora", "qlora"):
            need(self.lora.r >= 1, "lora.r", "must be at least 1")
            need(self.lora.alpha > 0, "lora.alpha", "must be positive")
            need(0 <= self.lora.dropout < 1, "lora.dropout", "must be in [0, 1)")
            targets = self.lora.target_modules
            need(
                targets == "auto"
                or (isinstance(targets, list) and bool(targets) and all(t for t in targets)),
                "lora.target_modules",
                'must be "auto" or a non-empty list of module names',
            )
        need(self.per_device_train_batch_size >= 1, "per_device_train_batch_size", "at least 1")
        need(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "at least 1")
        need(
            self.max_steps == -1 or self.max_steps >= 1,
            "max_steps",
            "must be -1 (train num_train_epochs) or at least 1",
        )
        if self.max_steps == -1:
            need(
                math.isfinite(self.num_train_epochs) and self.num_train_epochs > 0,
                "num_train_epochs",
                "must be positive",
            )
        need(
            math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1,
            "learning_rate",
            "must be positive and at most 1",
        )
        need(
            self.lr_scheduler_type in LR_SCHEDULERS,
            "lr_scheduler_type",
            f"must be one of {', '.join(LR_SCHEDULERS)}",
        )
        need(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay",
            "must be >= 0",
        )
        need(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        need(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
        need(
            not (self.warmup_steps and self.warmup_ratio),
            "warmup_ratio",
            "set warmup_steps or warmup_ratio, not both",
        )
        need(self.logging_steps >= 1, "logging_steps", "must be at least 1")
        need(self.save_steps >= 1, "save_steps", "must be at least 1")
        need(
            self.save_total_limit is None or self.save_total_limit >= 1,
            "save_total_limit",
            "must be at least 1 (or null to keep every checkpoint)",
        )
        need(
            self.eval_steps is None or self.eval_steps >= 1,
            "eval_steps",
            "must be at least 1 (or null to evaluate at every save)",
        )
        need(self.seed >= 0, "seed", "must be >= 0")
        need(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")
        need(self.deepspeed_stage in DEEPSPEED_STAGES, "deepspeed_stage", "must be 0, 2 or 3")
        need(
            not self.deepspeed_offload or self.deepspeed_stage > 0,
            "deepspeed_offload",
            "offload needs ZeRO stage 2 or 3",
        )
        need(self.nodes >= 1, "nodes", "must be at least 1")
        need(self.gpus_per_node >= 1, "gpus_per_node", "must be at least 1")
        need(
            not self.data_sha256 or bool(_SHA256.fullmatch(self.data_sha256)),
            "data_sha256",
            "must be 64 lowercase hex digits",
        )
        return errors

    def _environment_errors(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if self.model_dir.strip() and not (Path(self.model_dir) / "config.json").is_file():
            errors.append(("model_dir", f"no model (config.json) in {self.model_dir}"))
        if self.data_path.strip() and not Path(self.data_path).is_file():
            errors.append(("data_path", f"no data file at {self.data_path}"))
        cuda = cuda_device_count()
        if self.precision in ("bf16", "fp16") and not cuda:
            errors.append(
                ("precision", f"{self.precision} needs a CUDA GPU; use fp32 or auto on CPU")
            )
        if self.precision == "bf16" and cuda and not _cuda_bf16():
            errors.append(("precision", "this GPU does not support bf16; use fp16 or auto"))
        if self.method == "qlora":
            if not cuda:
                errors.append(("method", "QLoRA (4-bit) needs a CUDA GPU"))
            elif not module_available("bitsandbytes"):
                errors.append(("method", "QLoRA needs the bitsandbytes package on the GPU worker"))
        if self.deepspeed_stage:
            if not cuda:
                errors.append(("deepspeed_stage", "DeepSpeed ZeRO needs CUDA GPUs"))
            elif not module_available("deepspeed"):
                errors.append(("deepspeed_stage", "the deepspeed package is not installed"))
        if self.gpus_per_node > max(cuda, 1):
            errors.append(
                ("gpus_per_node", f"{self.gpus_per_node} GPUs asked, {cuda} visible on this host")
            )
        return errors

    def model_max_positions(self) -> int | None:
        """max_position_embeddings from the model's config.json, when readable."""
        try:
            config = json.loads((Path(self.model_dir) / "config.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        # Multimodal / composite configs keep the LM's limits under text_config.
        value = config.get("max_position_embeddings") or (config.get("text_config") or {}).get(
            "max_position_embeddings"
        )
        return value if isinstance(value, int) and value > 0 else None

    def resolved_precision(self) -> str:
        """ "auto" = bf16 where the GPU supports it, else fp16 on CUDA, else fp32."""
        if self.precision != "auto":
            return self.precision
        if not cuda_device_count():
            return "fp32"
        return "bf16" if _cuda_bf16() else "fp16"

    def resolved_pad_multiple(self) -> int:
        """pad_to_multiple_of, or GPU_PAD_MULTIPLE on a GPU and 1 (no rounding) on CPU, where
        kernels gain nothing from it and every padding token costs compute."""
        if self.pad_to_multiple_of is not None:
            return self.pad_to_multiple_of
        return GPU_PAD_MULTIPLE if cuda_device_count() else 1


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cuda_bf16() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def module_available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _typed_fields(cls: type, data: dict[str, Any], *, prefix: str) -> dict[str, Any]:
    """Check that `data` has only `cls`'s fields, each of its JSON type."""
    every = typing.get_type_hints(cls)
    hints = {f.name: every[f.name] for f in dataclasses.fields(cls)}  # fields only, no ClassVars
    for key, value in data.items():
        if key not in hints:
            raise SpecError(f"{prefix}{key}", "unknown field")
        if not _matches(value, hints[key]):
            raise SpecError(f"{prefix}{key}", f"expected {_describe(hints[key])}")
    return dict(data)


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # JSON true/false are not numbers
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _matches(k, key) and _matches(v, item) for k, v in value.items()
        )
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return False


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(hint))
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is list:
        return "a list"
    return "an object"
