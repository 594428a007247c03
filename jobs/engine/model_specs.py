"""Specs of the jobs that start from a model version: compression, evaluation, LoRA merge.

Django-free and cheap to import (no torch), like `spec.TrainSpec`: the web side validates the
user's knobs with `validate()` and maps `SpecError.field` to API field errors; the engine reads
the same JSON (`python -m jobs.engine.compress <spec.json>`, `…evaluate`, `…merge`).

`model_dir` is the model version as stored (full weights, or a LoRA adapter folder, in which
case `base_dir` is the base model it was trained on).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from .spec import FORMATS, JsonSpec, SpecError

# Compression methods (see compress.py for what each does and where it runs).
COMPRESSION_METHODS = (
    "int8_weight_only",
    "int8_dynamic",
    "int4_weight_only",
    "bnb_int8",
    "bnb_nf4",
    "legacy_dynamic_int8",
)
SCORERS = ("exact", "contains", "regex", "label")
REPORT = "hearth_report.json"  # the task's report, in its output folder
PERTURBATIONS = ("typos", "homophones", "synonyms")


@dataclass
class ModelTaskSpec(JsonSpec):
    model_dir: str
    output_dir: str
    events_path: str
    base_dir: str = ""  # the base model, when model_dir holds a LoRA adapter
    trust_remote_code: bool = False

    def validate(self) -> None:
        errors = self._value_errors()
        if errors:
            raise SpecError(errors[0][0], errors[0][1], errors)

    def _value_errors(self) -> list[tuple[str, str]]:
        return []


@dataclass
class DataFields:
    """Where the eval split comes from: the same rendering and seeded split as training, so a
    model trained with eval_ratio r on seed s is measured on rows it never saw."""

    data_path: str = ""
    format: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)
    eval_ratio: float = 0.1
    seed: int = 42
    max_seq_length: int = 512
    max_examples: int = 200

    def _data_errors(self) -> list[tuple[str, str]]:
        errors = []
        if self.format not in FORMATS:
            errors.append(("format", f"choose one of {', '.join(FORMATS)}"))
        if not 0 < self.eval_ratio <= 1:
            errors.append(("eval_ratio", "a fraction above 0 and at most 1"))
        if not 16 <= self.max_seq_length <= 131072:
            errors.append(("max_seq_length", "between 16 and 131072"))
        if not 1 <= self.max_examples <= 100000:
            errors.append(("max_examples", "between 1 and 100000"))
        return errors


@dataclass
class LatencyFields:
    prompt_tokens: int = 64
    max_new_tokens: int = 32
    latency_runs: int = 10

    def _latency_errors(self) -> list[tuple[str, str]]:
        errors = []
        if not 1 <= self.prompt_tokens <= 8192:
            errors.append(("prompt_tokens", "between 1 and 8192"))
        if not 1 <= self.max_new_tokens <= 4096:
            errors.append(("max_new_tokens", "between 1 and 4096"))
        if not 1 <= self.latency_runs <= 1000:
            errors.append(("latency_runs", "between 1 and 1000"))
        return errors


@dataclass
class CompressSpec(LatencyFields, DataFields, ModelTaskSpec):
    method: str = "int8_weight_only"
    compare_examples: int = 8  # eval rows whose logits are compared position by position

    def _value_errors(self) -> list[tuple[str, str]]:
        errors = self._data_errors() + self._latency_errors()
        if self.method not in COMPRESSION_METHODS:
            errors.insert(0, ("method", f"choose one of {', '.join(COMPRESSION_METHODS)}"))
        if not 1 <= self.compare_examples <= 256:
            errors.append(("compare_examples", "between 1 and 256"))
        return errors


@dataclass
class EvaluateSpec(LatencyFields, DataFields, ModelTaskSpec):
    scorer: str = "exact"
    pattern: str = ""  # regex scorer: group 1 (or the whole match) is the model's answer
    label_column: str = ""  # label scorer: the expected answer's column
    robustness: bool = True
    perturbations: list[str] = field(default_factory=lambda: list(PERTURBATIONS))

    def _value_errors(self) -> list[tuple[str, str]]:
        errors = self._data_errors() + self._latency_errors()
        if self.scorer not in SCORERS:
            errors.append(("scorer", f"choose one of {', '.join(SCORERS)}"))
        if self.scorer == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                errors.append(("pattern", f"not a valid regular expression: {exc}"))
            if not self.pattern:
                errors.append(("pattern", "the regex scorer needs a pattern"))
        if self.scorer == "label" and not self.label_column:
            errors.append(("label_column", "the label scorer needs the label column"))
        unknown = sorted(set(self.perturbations) - set(PERTURBATIONS))
        if unknown:
            errors.append(("perturbations", f"unknown: {', '.join(unknown)}"))
        return errors


@dataclass
class MergeSpec(ModelTaskSpec):
    def _value_errors(self) -> list[tuple[str, str]]:
        if not self.base_dir:
            return [("base_dir", "merging needs the base model of the adapter")]
        return []


SPEC_TYPES: dict[str, type[ModelTaskSpec]] = {
    "compression": CompressSpec,
    "evaluation": EvaluateSpec,
    "merge": MergeSpec,
}
# What a user may set per kind; the rest (paths) is the worker's business.
PATH_FIELDS = frozenset(
    {"model_dir", "output_dir", "events_path", "base_dir", "data_path", "trust_remote_code"}
)


def user_fields(kind: str) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(SPEC_TYPES[kind])) - PATH_FIELDS
