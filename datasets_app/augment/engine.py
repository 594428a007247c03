"""Row-level augmentation: N seeded, reproducible augmented copies of each dataset row.

Django-free: the processing job reads rows from a dataset version, feeds them through
``augment_rows`` and writes what it yields to a derived version, with ``AugmentReport.report()``
stored alongside.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import ops
from .placeholders import intact
from .text import script_of

OP_NAMES = ("synonym", "swap", "delete", "insert", "truncate_splice", "context")
MAX_COPIES = 20
# How many previous rows' texts (per column) truncate_splice may borrow from.
RESERVOIR_SIZE = 32
MAX_SAMPLES = 10
SAMPLE_CHARS = 500

# Each op's parameters and their defaults; unknown parameters are rejected to catch typos.
OP_DEFAULTS: dict[str, dict[str, Any]] = {
    "synonym": {"n": 2},
    "swap": {"n": 1},
    "delete": {"p": 0.1},
    "insert": {"n": 1},
    "truncate_splice": {"max_sentences": 2},
    "context": {"templates": None},
}

Generate = Callable[[str], str]
Progress = Callable[[int, int], None]


class AugmentConfigError(ValueError):
    """Invalid augmentation config; ``field`` names the offending key (dotted) for API errors."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(value: object, where: str, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        raise AugmentConfigError(f"must be an integer from {low} to {high}", where)


def _check_templates(value: object, where: str) -> None:
    def check_list(items: object, at: str) -> None:
        if not isinstance(items, list) or not items:
            raise AugmentConfigError("must be a non-empty list of strings", at)
        for item in items:
            if not isinstance(item, str) or not item.strip() or len(item) > 2000:
                raise AugmentConfigError("each template must be a non-empty string", at)
            if item.count("{text}") > 1:
                raise AugmentConfigError('a template may hold "{text}" at most once', at)

    if value is None:
        return
    if isinstance(value, Mapping):
        if not value or set(value) - {"zh", "en"}:
            raise AugmentConfigError('must be a list, or an object with "zh" and/or "en"', where)
        for lang, items in value.items():
            check_list(items, f"{where}.{lang}")
        return
    check_list(value, where)


def _normalise_ops(value: object) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping) or not value:
        raise AugmentConfigError("at least one op is required", "ops")
    normalised: dict[str, dict[str, Any]] = {}
    for name, params in value.items():
        where = f"ops.{name}"
        if name not in OP_DEFAULTS:
            raise AugmentConfigError(f"unknown op; known: {', '.join(OP_NAMES)}", where)
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise AugmentConfigError("op parameters must be an object", where)
        unknown = set(params) - set(OP_DEFAULTS[name])
        if unknown:
            raise AugmentConfigError(f"unknown parameter(s): {', '.join(sorted(unknown))}", where)
        merged = {**copy.deepcopy(OP_DEFAULTS[name]), **copy.deepcopy(dict(params))}
        if name in ("synonym", "swap", "insert"):
            _check_count(merged["n"], f"{where}.n", 1, 100)
        elif name == "delete":
            p = merged["p"]
            ok = isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p)
            if not ok or not 0.0 <= p <= 1.0:
                raise AugmentConfigError("must be a probability between 0 and 1", f"{where}.p")
        elif name == "truncate_splice":
            _check_count(merged["max_sentences"], f"{where}.max_sentences", 1, 10)
        elif name == "context":
            _check_templates(merged["templates"], f"{where}.templates")
        normalised[name] = merged
    return normalised


@dataclass
class AugmentConfig:
    """What to augment and how. ``to_dict()`` is the JSON stored with the job (defaults filled)."""

    copies: int = 2
    seed: int = 42
    # None: every string column and every chat ("messages"-style) column.
    columns: list[str] | None = None
    ops: dict[str, dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(OP_DEFAULTS),
    )
    # None: each copy applies one op chosen at random from ``ops``; a list applies those ops,
    # in that order, to every copy.
    sequence: list[str] | None = None
    keep_original: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_count(self.copies, "copies", 1, MAX_COPIES)
        if not _is_int(self.seed):
            raise AugmentConfigError("must be an integer", "seed")
        if self.columns is not None:
            if not isinstance(self.columns, list) or not self.columns:
                raise AugmentConfigError("must be null or a non-empty list of names", "columns")
            if not all(isinstance(c, str) and c for c in self.columns):
                raise AugmentConfigError("column names must be non-empty strings", "columns")
            if len(set(self.columns)) != len(self.columns):
                raise AugmentConfigError("column names must be unique", "columns")
        self.ops = _normalise_ops(self.ops)
        if self.sequence is not None:
            if not isinstance(self.sequence, list) or not 1 <= len(self.sequence) <= 10:
                raise AugmentConfigError("must be null or a list of 1 to 10 op names", "sequence")
            for name in self.sequence:
                if name not in self.ops:
                    raise AugmentConfigError(f"{name!r} is not configured in ops", "sequence")
        if not isinstance(self.keep_original, bool):
            raise AugmentConfigError("must be true or false", "keep_original")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentConfig:
        if not isinstance(data, Mapping):
            raise AugmentConfigError("config must be an object")
        known = {"copies", "seed", "columns", "ops", "sequence", "keep_original"}
        unknown = set(data) - known
        if unknown:
            raise AugmentConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", "config")
        kwargs = {k: copy.deepcopy(v) for k, v in data.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "copies": self.copies,
            "seed": self.seed,
            "columns": list(self.columns) if self.columns is not None else None,
            "ops": copy.deepcopy(self.ops),
            "sequence": list(self.sequence) if self.sequence is not None else None,
            "keep_original": self.keep_original,
        }


@dataclass
class AugmentReport:
    """Counts and a few before/after samples, stored with the derived version."""

    rows_in: int = 0
    rows_out: int = 0
    augmented_rows: int = 0
    # Augmented copies identical to their source row (e.g. no word had a synonym).
    unchanged_copies: int = 0
    # op -> {"applied": texts it ran on, "changed": texts it changed, "reverted": see _apply}
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def count(self, op: str, key: str) -> None:
        counts = self.ops.setdefault(op, {"applied": 0, "changed": 0, "reverted": 0})
        counts[key] += 1

    def add_sample(self, **sample: Any) -> None:
        if len(self.samples) < MAX_SAMPLES:
            for key in ("before", "after"):
                sample[key] = sample[key][:SAMPLE_CHARS]
            self.samples.append(sample)

    def report(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "augmented_rows": self.augmented_rows,
            "unchanged_copies": self.unchanged_copies,
            "ops": copy.deepcopy(self.ops),
            "samples": copy.deepcopy(self.samples),
        }


def _rng(seed: int, *parts: object) -> random.Random:
    """An rng derived only from (seed, row, copy, ...): reproducible across processes (no
    PYTHONHASHSEED), and independent of batching and of how far the iterator was consumed."""
    key = "\x1f".join(str(p) for p in (seed, *parts)).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))  # noqa: S311


def _is_chat(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in value)
    )


def _selected_columns(row: Mapping[str, Any], columns: list[str] | None) -> list[str]:
    names = list(row) if columns is None else [c for c in columns if c in row]
    return [c for c in names if isinstance(row[c], str) or _is_chat(row[c])]


class _Augmenter:
    def __init__(
        self, config: AugmentConfig, generate: Generate | None, report: AugmentReport
    ) -> None:
        self.config = config
        self.generate = generate
        self.report = report
        # Previous rows' original texts per column, for truncate_splice's "other row".
        self.reservoir: dict[str, deque[str]] = {}

    def _run_op(self, name: str, text: str, rng: random.Random, key: str) -> tuple[str, str]:
        """Apply one op; returns (new text, the text spliced in if any)."""
        params = self.config.ops[name]
        if name == "synonym":
            return ops.synonym_replace(text, rng, params["n"]), ""
        if name == "swap":
            return ops.random_swap(text, rng, params["n"]), ""
        if name == "delete":
            return ops.random_delete(text, rng, params["p"]), ""
        if name == "insert":
            return ops.random_insert(text, rng, params["n"]), ""
        if name == "truncate_splice":
            pool = [t for t in self.reservoir.get(key, ()) if t != text]
            # Prefer a text in the same script: a Chinese answer spliced into an English one
            # teaches code-switching, not robustness.
            same_script = [t for t in pool if script_of(t) == script_of(text)]
            pool = same_script or pool
            if not pool:  # the first rows have no previous row to borrow from
                return text, ""
            other = rng.choice(pool)
            return ops.truncate_splice(text, rng, other, params["max_sentences"]), other
        if name == "context":
            return ops.context_extend(text, rng, params["templates"], self.generate), ""
        raise AssertionError(name)

    def _apply(self, names: list[str], text: str, rng: random.Random, key: str) -> str:
        if not text.strip():
            return text
        for name in names:
            before = text
            text, other = self._run_op(name, text, rng, key)
            self.report.count(name, "applied")
            # Defence in depth: the ops never touch placeholders by construction; should one
            # ever do (a bug, an odd template), keep the text unaugmented rather than leak or
            # corrupt a desensitized value.
            mode = {"truncate_splice": "subset", "context": "superset"}.get(name, "exact")
            if not intact(before, text, extra=other, mode=mode):
                self.report.count(name, "reverted")
                text = before
            elif text != before:
                self.report.count(name, "changed")
        return text

    def remember(self, row: Mapping[str, Any], columns: list[str]) -> None:
        for column in columns:
            value = row[column]
            texts = (
                [value]
                if isinstance(value, str)
                else [m["content"] for m in value if m.get("role") == "user"]
            )
            key = column if isinstance(value, str) else f"{column}[user]"
            bucket = self.reservoir.setdefault(key, deque(maxlen=RESERVOIR_SIZE))
            bucket.extend(t for t in texts if isinstance(t, str) and t.strip())

    def augment(self, index: int, row: dict[str, Any], copy_no: int) -> dict[str, Any]:
        config = self.config
        choice_rng = _rng(config.seed, index, copy_no)
        if config.sequence:
            names = list(config.sequence)
        else:
            choices = list(config.ops)
            if not self.reservoir and len(choices) > 1 and "truncate_splice" in choices:
                # No previous row yet to splice from: pick among the other ops instead of
                # yielding a copy identical to the original.
                choices.remove("truncate_splice")
            names = [choice_rng.choice(choices)]
        new_row = dict(row)
        for column in _selected_columns(row, config.columns):
            value = row[column]
            if isinstance(value, str):
                rng = _rng(config.seed, index, copy_no, column)
                new_row[column] = self._apply(names, value, rng, column)
                after = new_row[column]
                self._sample(index, copy_no, names, column, value, after)
                continue
            # Chat rows: only user turns are augmented. Assistant turns are the training target:
            # a swapped, deleted or spliced answer would teach the model to write broken or
            # wrong answers (doses, amounts), whereas varied questions teach robustness.
            # System prompts are the deployment's fixed instructions and stay as written.
            messages = []
            for m_no, message in enumerate(value):
                message = dict(message)
                content = message.get("content")
                if message.get("role") == "user" and isinstance(content, str):
                    rng = _rng(config.seed, index, copy_no, column, m_no)
                    message["content"] = self._apply(names, content, rng, f"{column}[user]")
                    self._sample(
                        index, copy_no, names, f"{column}[{m_no}]", content, message["content"]
                    )
                messages.append(message)
            new_row[column] = messages
        return new_row

    def _sample(
        self, index: int, copy_no: int, names: list[str], column: str, before: str, after: str
    ) -> None:
        if before != after:
            self.report.add_sample(
                row=index, copy=copy_no, ops=names, column=column, before=before, after=after
            )


def augment_rows(
    rows: Iterable[dict[str, Any]],
    config: AugmentConfig | Mapping[str, Any],
    generate: Generate | None = None,
    progress: Progress | None = None,
    *,
    report: AugmentReport | None = None,
    start_index: int = 0,
) -> Iterator[dict[str, Any]]:
    """Yield, per input row, the original (if ``keep_original``) then ``copies`` augmented rows.

    ``generate(prompt) -> continuation`` is used by the "context" op instead of its templates.
    ``progress(rows_in, rows_out)`` is called after each input row (throttle on the caller side).
    Pass ``report`` to read counts and samples afterwards. Row ``i`` copy ``j`` uses an rng
    derived from (seed, start_index + i, j), so a run split into chunks gives the same rows if
    each chunk passes its ``start_index`` (only truncate_splice's pool of previous rows starts
    empty again at each call). Input rows are never mutated.
    """
    cfg = config if isinstance(config, AugmentConfig) else AugmentConfig.from_dict(config)
    cfg.validate()
    report = report if report is not None else AugmentReport()
    augmenter = _Augmenter(cfg, generate, report)
    for offset, row in enumerate(rows):
        index = start_index + offset
        columns = _selected_columns(row, cfg.columns)
        # Build every copy before yielding anything, so a consumer that edits the rows it is
        # given cannot change the copies still to come.
        copies = [augmenter.augment(index, row, copy_no) for copy_no in range(cfg.copies)]
        augmenter.remember(row, columns)  # after its own copies: only *previous* rows are borrowed
        report.rows_in += 1
        report.augmented_rows += len(copies)
        report.unchanged_copies += sum(1 for c in copies if c == row)
        report.rows_out += len(copies) + (1 if cfg.keep_original else 0)
        if cfg.keep_original:
            yield row
        yield from copies
        if progress is not None:
            progress(report.rows_in, report.rows_out)
