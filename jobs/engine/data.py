"""Training data: JSON Lines records -> prompt/response token ids with masked labels -> batches.

Formats (`spec.format`, "auto" detects from column names, Chinese ones included):
  chat_template      a list of messages ({role, content} or ShareGPT {from, value}), rendered
                     with the tokenizer's chat template; loss on assistant turns only.
  alpaca             instruction (+ input, + system) -> output, rendered as a one-turn chat
                     with the chat template, or "### Instruction/### Response" without one.
  prompt_completion  raw prompt (masked) + completion + EOS, no template.
  text               plain language modelling on the whole text + EOS.

Prompt and response are tokenized separately and concatenated, as at inference time, where
the prompt is tokenized alone and the model continues it. Labels are -100 on prompt tokens and
on each example's first token; examples are truncated to max_seq_length (an example with no
trained token left is skipped).

Packing (`spec.packing`): whole examples are bin-packed (best-fit decreasing) into blocks of at
most max_seq_length tokens; each block is one row, laid out by transformers'
DataCollatorWithFlattening with position_ids restarting at 0 for each example, and the rows of
a batch are padded to the longest. There is no attention mask, so transformers derives the
example boundaries from position_ids: flash-attention runs varlen kernels, sdpa/eager (CPU
included) get a block-diagonal causal mask, and no token attends across examples (tests check
the logits equal the unpacked ones). This needs the KV cache off in training (the engine turns
it off: with a cache the mask ignores position_ids). Why rows of blocks rather than flattening
the whole batch into one row (DataCollatorWithFlattening's own use): without flash-attention
the mask is dense, so one row of batch x max_seq_length tokens costs batch times the attention
of batch rows of max_seq_length (bench's tiny model, CPU sdpa: forward + backward of one
flattened row of 4096 tokens took 2.7x as long as 8 rows of 512). With packing,
per_device_train_batch_size counts blocks, so a step holds up to that many x max_seq_length
tokens: more examples per step than without packing, and memory sized by max_seq_length.

Without packing, batches are padded to their longest example (right side, labels -100), in
the sampler's random order; on a GPU each batch width is rounded up to a multiple of 64
(spec.GPU_PAD_MULTIPLE says why), capped at max_seq_length. Packed rows are not rounded.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jinja2 import TemplateError
from transformers import DataCollatorWithFlattening

from datasets_app.formats.ingest import iter_jsonl

from .spec import COLUMN_ROLES, TrainSpec

IGNORE = -100
DETECT_ROWS = 200  # records whose keys auto-detection looks at
# Column names recognised per role, compared case-insensitively.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "conversations", "conversation", "dialog", "dialogue", "对话"),
    "instruction": ("instruction", "指令", "question", "问题", "query", "提问", "问"),
    "input": ("input", "输入", "context", "上下文"),
    "output": ("output", "输出", "answer", "答案", "response", "回答", "回复", "答"),
    "system": ("system", "system_prompt", "系统", "系统提示"),
    "prompt": ("prompt", "提示"),
    "completion": ("completion", "补全", "续写"),
    "text": ("text", "content", "文本", "内容", "正文"),
}
REQUIRED_ROLES = {
    "chat_template": ("messages",),
    "alpaca": ("instruction", "output"),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
}
# ShareGPT speaker names -> chat template roles.
ROLE_NAMES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "system": "system",
}
PLAIN_PROMPT = "### Instruction:\n{prompt}\n\n### Response:\n"


class DataError(ValueError):
    """The data cannot be used as asked (shown to the user as is)."""


@dataclass
class Example:
    input_ids: array
    labels: array

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class PreparedData:
    train: torch.utils.data.Dataset
    eval: torch.utils.data.Dataset | None
    collator: Any
    stats: dict[str, Any] = field(default_factory=dict)


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


class PackedCollator:
    """A batch of packed blocks -> rows [blocks, longest block] with per-example position_ids
    and no attention mask. DataCollatorWithFlattening lays out each block (position_ids from 0
    per example, first label -100); rows are then padded with pad_id tokens at position 0,
    label -100: each pad token is a one-token sequence of its own that nothing attends to."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id
        self._flatten = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE)

    def __call__(self, blocks: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [self._flatten(block["examples"]) for block in blocks]
        width = max(row["input_ids"].shape[1] for row in rows)
        batch = {
            "input_ids": torch.full((len(rows), width), self.pad_id, dtype=torch.long),
            "labels": torch.full((len(rows), width), IGNORE, dtype=torch.long),
            "position_ids": torch.zeros((len(rows), width), dtype=torch.long),
        }
        for index, row in enumerate(rows):
            for key, tensor in batch.items():
                tensor[index, : row[key].shape[1]] = row[key][0]
        return batch


def padded_width(longest: int, multiple: int, cap: int | None) -> int:
    """The width of a batch whose longest row has `longest` tokens: rounded up to `multiple`
    (few distinct shapes, see spec.GPU_PAD_MULTIPLE), but never past `cap` (max_seq_length)
    unless the row itself is longer."""
    if multiple <= 1:
        return longest
    rounded = -(-longest // multiple) * multiple
    return max(longest, min(rounded, cap)) if cap else rounded


def real_tokens(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Non-padding tokens in a batch from either collator (a 0-d tensor on the batch's device).
    Packed rows: a padding token sits at position 0 without position 1 after it; a real example
    always has both (a one-token example trains nothing and is skipped)."""
    if "attention_mask" in batch:
        return batch["attention_mask"].sum()
    positions = batch["position_ids"]
    followed = torch.zeros_like(positions, dtype=torch.bool)
    followed[:, :-1] = positions[:, 1:] == 1
    return positions.numel() - ((positions == 0) & ~followed).sum()


class PaddingCollator:
    """Pads a batch to its longest example (rounded, see padded_width): pad_id / attention 0 /
    label -100, on the right."""

    def __init__(self, pad_id: int, multiple: int = 1, max_width: int | None = None) -> None:
        self.pad_id = pad_id
        self.multiple = multiple
        self.max_width = max_width

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        width = padded_width(longest, self.multiple, self.max_width)
        input_ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, feature in enumerate(features):
            length = len(feature["input_ids"])
            input_ids[row, :length] = torch.tensor(feature["input_ids"], dtype=torch.long)
            labels[row, :length] = torch.tensor(feature["labels"], dtype=torch.long)
            attention_mask[row, :length] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# ---- loading and format detection ----


def load_records(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as stream:
        return list(iter_jsonl(stream))


def resolve_format(
    records: Sequence[Mapping[str, Any]], fmt: str, columns: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """(format, role -> column) for these records: explicit columns win, the rest is detected."""
    present: dict[str, str] = {}  # lowercased column name -> actual name
    list_columns: set[str] = set()
    for record in records[:DETECT_ROWS]:
        for key, value in record.items():
            present.setdefault(key.lower(), key)
            if isinstance(value, list):
                list_columns.add(key)

    def find(role: str) -> str | None:
        if role in columns:
            return columns[role]
        for alias in COLUMN_ALIASES[role]:
            if alias in present:
                return present[alias]
        return None

    if fmt == "auto":
        messages = find("messages")
        if messages in list_columns:
            fmt = "chat_template"
        elif find("instruction") and find("output"):
            fmt = "alpaca"
        elif find("prompt") and find("completion"):
            fmt = "prompt_completion"
        elif find("text"):
            fmt = "text"
        else:
            raise DataError(
                "Cannot tell the data format from the columns "
                f"({', '.join(sorted(present.values())) or 'none'}): set the format and columns."
            )
    resolved = {role: column for role in COLUMN_ROLES[fmt] if (column := find(role))}
    missing = [role for role in REQUIRED_ROLES[fmt] if role not in resolved]
    if missing:
        raise DataError(
            f"The {fmt} format needs a column for {', '.join(missing)}; columns found: "
            f"{', '.join(sorted(present.values())) or 'none'}."
        )
    return fmt, resolved


# ---- rendering records as (text, trained) segments ----


@dataclass
class Rendered:
    segments: list[tuple[str, bool]]  # (text, is it trained)
    add_bos: bool = False  # raw formats: the template is not there to add one
    add_eos: bool = False


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _messages(value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list):
        return None
    messages = []
    for item in value:
        if not isinstance(item, dict):
            return None
        role = ROLE_NAMES.get(_text(item.get("role", item.get("from"))).lower())
        if role is None:
            return None
        messages.append({"role": role, "content": _text(item.get("content", item.get("value")))})
    return messages


def _render_chat(messages: list[dict[str, str]], tokenizer: Any) -> Rendered | None:
    while messages and messages[0]["role"] == "assistant":
        messages = messages[1:]  # an answer to nothing (a greeting) has no prompt to learn from
    assistant_turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if not assistant_turns:
        return None
    if not getattr(tokenizer, "chat_template", None):
        return _render_chat_plain(messages, tokenizer)

    def render(upto: int, generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            messages[:upto], tokenize=False, add_generation_prompt=generation_prompt
        )

    def turn(index: int) -> tuple[str, str]:
        """(prompt text, full text) up to assistant turn `index`, split where they diverge:
        some templates open a reasoning block in the generation prompt that the rendered
        answer does not repeat."""
        prompt, full = render(index, True), render(index + 1, False)
        cut = next(
            (i for i, (a, b) in enumerate(zip(prompt, full, strict=False)) if a != b),
            min(len(prompt), len(full)),
        )
        return full[:cut], full

    segments: list[tuple[str, bool]] = []
    done = ""
    for index in assistant_turns:
        prompt, full = turn(index)
        if not prompt.startswith(done):
            # The template rewrites earlier turns (e.g. drops their reasoning): train on the
            # last answer only, its whole history as the prompt.
            prompt, full = turn(assistant_turns[-1])
            return Rendered([(prompt, False), (full[len(prompt) :], True)])
        segments += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
        done = full
    return Rendered([(text, trained) for text, trained in segments if text])


def _render_chat_plain(messages: list[dict[str, str]], tokenizer: Any) -> Rendered:
    """For tokenizers without a chat template: the Alpaca-style plain layout, per turn."""
    eos = tokenizer.eos_token or ""
    segments: list[tuple[str, bool]] = []
    for message in messages:
        if message["role"] == "system":
            segments.append((message["content"] + "\n\n", False))
        elif message["role"] == "user":
            segments.append((PLAIN_PROMPT.format(prompt=message["content"]), False))
        else:
            segments.append((message["content"] + eos, True))
            segments.append(("\n\n", False))
    while not segments[-1][1]:
        segments.pop()  # nothing is learned after the last answer
    return Rendered(segments, add_bos=True)


def render_record(
    record: Mapping[str, Any], fmt: str, columns: Mapping[str, str], tokenizer: Any
) -> Rendered | None:
    """None when the record has nothing to train on (missing or empty columns)."""
    try:
        return _render_record(record, fmt, columns, tokenizer)
    except TemplateError:  # the chat template refuses the conversation (e.g. roles not alternating)
        return None


def _render_record(
    record: Mapping[str, Any], fmt: str, columns: Mapping[str, str], tokenizer: Any
) -> Rendered | None:
    if fmt == "chat_template":
        messages = _messages(record.get(columns["messages"]))
        return _render_chat(messages, tokenizer) if messages else None
    if fmt == "alpaca":
        instruction = _text(record.get(columns["instruction"])).strip()
        extra = _text(record.get(columns["input"])).strip() if "input" in columns else ""
        output = _text(record.get(columns["output"]))
        if not (instruction or extra) or not output.strip():
            return None
        prompt = "\n".join(part for part in (instruction, extra) if part)
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
        system = _text(record.get(columns["system"])).strip() if "system" in columns else ""
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return _render_chat(messages, tokenizer)
    if fmt == "prompt_completion":
        prompt = _text(record.get(columns["prompt"]))
        completion = _text(record.get(columns["completion"]))
        if not completion.strip():
            return None
        return Rendered([(prompt, False), (completion, True)], add_bos=True, add_eos=True)
    text = _text(record.get(columns["text"]))
    return Rendered([(text, True)], add_bos=True, add_eos=True) if text.strip() else None


def tokenize(rendered: Rendered, tokenizer: Any, max_length: int) -> tuple[Example, bool]:
    """(example, was it truncated)."""
    ids = array("i")
    labels = array("i")
    if rendered.add_bos and tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE)
    texts = [text for text, _ in rendered.segments]
    # verbose=False: over-long texts are expected here, they are truncated below.
    encoded = (
        tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []
    )
    for (_, trained), piece in zip(rendered.segments, encoded, strict=True):
        ids.extend(piece)
        labels.extend(piece if trained else [IGNORE] * len(piece))
    if rendered.add_eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    if labels:
        # Nothing predicts the first token (and in a packed row, the previous example must not).
        labels[0] = IGNORE
    return Example(ids, labels), truncated


# ---- packing ----


def pack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing: indices grouped into bins of total length <= capacity."""
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        length = lengths[index]
        slot = bisect_left(free, (length, -1))
        if slot < len(free):
            room, target = free.pop(slot)
            bins[target].append(index)
        else:
            room, target = capacity, len(bins)
            bins.append([index])
        room -= length
        if room >= 2:  # an example needs two tokens to train anything
            insort(free, (room, target))
    return bins


def _padded_tokens(lengths: list[int], batch_size: int, seed: int, multiple: int, cap: int) -> int:
    """Tokens the unpacked batches carry, padding included, for one seeded random order."""
    order = list(lengths)
    random.Random(seed).shuffle(order)  # noqa: S311 (a reproducible order, not a secret)
    return sum(
        len(chunk) * padded_width(max(chunk), multiple, cap)
        for chunk in (order[i : i + batch_size] for i in range(0, len(order), batch_size))
    )


# ---- the whole pipeline ----


def split_indices(count: int, ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, eval) record indices: a seeded shuffle, at least one of each when ratio > 0."""
    order = list(range(count))
    random.Random(seed).shuffle(order)  # noqa: S311 (a reproducible split, not a secret)
    eval_count = round(count * ratio)
    if ratio > 0 and count >= 2:
        eval_count = min(max(eval_count, 1), count - 1)
    return sorted(order[eval_count:]), sorted(order[:eval_count])


def prepare_data(spec: TrainSpec, tokenizer: Any) -> PreparedData:
    records = load_records(spec.data_path)
    if not records:
        raise DataError("The data file holds no records.")
    fmt, columns = resolve_format(records, spec.format, spec.columns)
    train_idx, eval_idx = split_indices(len(records), spec.eval_ratio, spec.seed)
    skipped = 0
    truncated = 0

    def build(indices: list[int]) -> list[Example]:
        nonlocal skipped, truncated
        examples = []
        for index in indices:
            rendered = render_record(records[index], fmt, columns, tokenizer)
            if rendered is None:
                skipped += 1
                continue
            example, was_truncated = tokenize(rendered, tokenizer, spec.max_seq_length)
            if not any(label != IGNORE for label in example.labels):
                skipped += 1  # the prompt alone fills max_seq_length
                continue
            truncated += was_truncated
            examples.append(example)
        return examples

    train, evaluation = build(train_idx), build(eval_idx)
    if not train:
        raise DataError(
            f"No usable training example among {len(train_idx)} records ({fmt}, columns "
            f"{columns}): every one is empty, lacks an answer, or its prompt is longer than "
            f"max_seq_length ({spec.max_seq_length})."
        )
    lengths = [len(example) for example in train]
    real = sum(lengths)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    if spec.packing:
        train_rows = _packed_rows(train, spec.max_seq_length)
        eval_rows = _packed_rows(evaluation, spec.max_seq_length)
        collator: Any = PackedCollator(pad_id)  # widths near max_seq_length: few shapes
        slots = len(train_rows) * spec.max_seq_length
        multiple = 1
    else:
        multiple = spec.resolved_pad_multiple()
        train_rows, eval_rows = _plain_rows(train), _plain_rows(evaluation)
        collator = PaddingCollator(pad_id, multiple, spec.max_seq_length)
        slots = _padded_tokens(
            lengths, spec.per_device_train_batch_size, spec.seed, multiple, spec.max_seq_length
        )
    stats = {
        "format": fmt,
        "columns": columns,
        "records": len(records),
        "examples": {"train": len(train), "eval": len(evaluation)},
        "skipped": skipped,
        "truncated": truncated,
        "tokens": {"train": real, "eval": sum(len(example) for example in evaluation)},
        "label_tokens": sum(sum(1 for label in e.labels if label != IGNORE) for e in train),
        "max_length": max(lengths),
        "mean_length": round(real / len(train), 1),
        "max_seq_length": spec.max_seq_length,
        "pad_to_multiple_of": multiple,
        "length_histogram": _histogram(lengths, spec.max_seq_length),
        "packing": spec.packing,
        "rows": len(train_rows),
        # Real tokens / token slots: packed, each block reserves max_seq_length; unpacked,
        # each example is padded to the longest of its batch (estimated on a seeded shuffle).
        "packing_efficiency": round(real / slots, 4),
    }
    return PreparedData(
        train=ListDataset(train_rows),
        eval=ListDataset(eval_rows) if eval_rows else None,
        collator=collator,
        stats=stats,
    )


def _plain_rows(examples: list[Example]) -> list[dict[str, Any]]:
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]


def _packed_rows(examples: list[Example], capacity: int) -> list[dict[str, Any]]:
    bins = pack([len(example) for example in examples], capacity)
    return [{"examples": _plain_rows([examples[i] for i in members])} for members in bins]


def _histogram(lengths: list[int], max_length: int, buckets: int = 8) -> list[int]:
    """Example counts per length bucket of max_length / buckets tokens (for the UI)."""
    counts = Counter(min((length - 1) * buckets // max_length, buckets - 1) for length in lengths)
    return [counts.get(bucket, 0) for bucket in range(buckets)]
