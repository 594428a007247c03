"""What compression and evaluation share on the worker: loading a model version (full weights,
or a LoRA adapter over its base), the eval split rendered as at training time, perplexity,
position-by-position logits comparison, generation latency and memory figures.

Django-free. Prompts are rendered with data.py's renderer, so a model is measured on the same
text layout it was trained on (its chat template, or the plain layout without one).
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .data import IGNORE, load_records, render_record, resolve_format, split_indices, tokenize
from .model_specs import DataFields, ModelTaskSpec

ADAPTER_CONFIG = "adapter_config.json"
# When a dataset has no usable eval rows, latency still needs a prompt: a neutral mixed text.
FALLBACK_PROMPT = "请用一句话概括以下内容。Summarise the following note in one sentence: "


def compute_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ADAPTER_CONFIG).is_file()


def load_tokenizer(spec: ModelTaskSpec) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        spec.model_dir, trust_remote_code=spec.trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def default_dtype() -> torch.dtype:
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_model(
    model_dir: str | Path,
    *,
    base_dir: str | Path = "",
    trust_remote_code: bool = False,
    dtype: torch.dtype | None = None,
    quantization_config: Any = None,
    device: str | None = None,
) -> Any:
    """A causal LM ready for inference; a LoRA adapter is merged into its base in memory."""
    from transformers import AutoModelForCausalLM

    device = device or compute_device()
    from . import legacy_int8

    if legacy_int8.is_legacy(model_dir):  # CPU only, by construction
        model = legacy_int8.load(model_dir, trust_remote_code=trust_remote_code)
        model.config.use_cache = True
        return model.eval()
    kwargs: dict[str, Any] = {
        "dtype": dtype or default_dtype(),
        "use_safetensors": True,
        "trust_remote_code": trust_remote_code,
    }
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        if device == "cuda":
            kwargs["device_map"] = {"": 0}
    source = base_dir if is_adapter(model_dir) else model_dir
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if is_adapter(model_dir):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(model_dir)).merge_and_unload()
    if "device_map" not in kwargs:
        model = model.to(device)
    model.config.use_cache = True
    model.eval()
    return model


def save_full_model(spec: ModelTaskSpec, folder: Path, tokenizer: Any) -> Path:
    """The model version as full float weights (an adapter merged into its base), safetensors."""
    model = load_model(
        spec.model_dir, base_dir=spec.base_dir, trust_remote_code=spec.trust_remote_code
    )
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    del model
    free_memory()
    return folder


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- the eval split ----


@dataclass
class EvalItem:
    record: dict[str, Any]
    prompt: str  # rendered as at training time, ready for generation
    expected: str  # the reference answer (first trained segment, or the answer column)
    input_ids: list[int]  # prompt + answer, truncated to max_seq_length
    labels: list[int]


def eval_items(
    spec: DataFields, tokenizer: Any, records: list[dict] | None = None
) -> list[EvalItem]:
    """The seeded eval split, as training made it (same seed and ratio: the same rows)."""
    if records is None:
        records = load_records(spec.data_path) if spec.data_path else []
    if not records:
        return []
    fmt, columns = resolve_format(records, spec.format, spec.columns)
    _train, held_out = split_indices(len(records), spec.eval_ratio, spec.seed)
    if not held_out:  # one record: measure on it rather than on nothing
        held_out = [0]
    items = []
    for index in held_out[: spec.max_examples]:
        item = render_item(records[index], fmt, columns, tokenizer, spec.max_seq_length)
        if item is not None:
            items.append(item)
    return items


def render_item(
    record: dict[str, Any], fmt: str, columns: dict[str, str], tokenizer: Any, max_length: int
) -> EvalItem | None:
    rendered = render_record(record, fmt, columns, tokenizer)
    if rendered is None:
        return None
    prompt_parts = []
    for text, trained in rendered.segments:
        if trained:
            break
        prompt_parts.append(text)
    first_answer = next((text for text, trained in rendered.segments if trained), "")
    answer_column = {"alpaca": "output", "prompt_completion": "completion"}.get(fmt)
    if answer_column and answer_column in columns:
        expected = str(record.get(columns[answer_column]) or "")
    else:
        ids = tokenizer(first_answer, add_special_tokens=False)["input_ids"]
        expected = tokenizer.decode(ids, skip_special_tokens=True)
    example, _truncated = tokenize(rendered, tokenizer, max_length)
    prompt = "".join(prompt_parts)
    if rendered.add_bos and tokenizer.bos_token and not prompt.startswith(tokenizer.bos_token):
        prompt = tokenizer.bos_token + prompt
    return EvalItem(
        record=record,
        prompt=prompt,
        expected=expected.strip(),
        input_ids=list(example.input_ids),
        labels=list(example.labels),
    )


# ---- measurements ----


@torch.no_grad()
def perplexity(model: Any, items: list[EvalItem]) -> float | None:
    """Token-weighted perplexity over the answer tokens of the eval split."""
    device = next(model.parameters()).device
    total_loss, total_tokens = 0.0, 0
    for item in items:
        labels = torch.tensor([item.labels], device=device)
        count = int((labels[:, 1:] != IGNORE).sum())
        if count == 0:
            continue
        ids = torch.tensor([item.input_ids], device=device)
        loss = model(input_ids=ids, labels=labels).loss
        total_loss += float(loss) * count
        total_tokens += count
    if total_tokens == 0:
        return None
    mean = total_loss / total_tokens
    return math.exp(mean) if mean < 700 else None


@torch.no_grad()
def log_probs(model: Any, items: list[EvalItem], limit: int) -> list[torch.Tensor]:
    """Per-position log-probabilities of `limit` eval rows, kept on the CPU in float32."""
    device = next(model.parameters()).device
    out = []
    for item in items[:limit]:
        ids = torch.tensor([item.input_ids], device=device)
        logits = model(input_ids=ids).logits[0].float()
        out.append(torch.log_softmax(logits, dim=-1).cpu())
    return out


def compare_log_probs(
    reference: list[torch.Tensor], candidate: list[torch.Tensor]
) -> dict[str, float | None]:
    """Mean |Δlogit| (on log-probabilities: logits shifted per position, so the comparison does
    not depend on an arbitrary offset), KL(reference ‖ candidate) per token, top-1 agreement."""
    if not reference:
        return {"mean_abs_logits_diff": None, "kl_divergence": None, "top1_agreement": None}
    diff_sum = kl_sum = 0.0
    agree = positions = values = 0
    for ref, cand in zip(reference, candidate, strict=True):
        diff_sum += float((ref - cand).abs().sum())
        values += ref.numel()
        kl_sum += float((ref.exp() * (ref - cand)).sum())
        agree += int((ref.argmax(-1) == cand.argmax(-1)).sum())
        positions += ref.shape[0]
    return {
        "mean_abs_logits_diff": diff_sum / values,
        "kl_divergence": max(kl_sum / positions, 0.0),
        "top1_agreement": agree / positions,
    }


def fixed_prompt_ids(tokenizer: Any, items: list[EvalItem], length: int) -> list[int]:
    """A prompt of exactly `length` tokens (eval prompts repeated, or the fallback text)."""
    text = "".join(item.prompt for item in items[:8]) or FALLBACK_PROMPT
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
    while len(ids) < length:
        ids = ids + ids
    return ids[:length]


def sync_cuda() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@torch.no_grad()
def generation_latency(
    model: Any, tokenizer: Any, prompt_ids: list[int], new_tokens: int, runs: int
) -> dict[str, float]:
    """Greedy generation of exactly `new_tokens` tokens after a fixed prompt, `runs` times
    after two warm-ups: p50/p95 latency and decode throughput."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids], device=device)
    mask = torch.ones_like(ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def once() -> float:
        sync_cuda()
        started = time.perf_counter()
        model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
        sync_cuda()
        return time.perf_counter() - started

    once(), once()
    times = sorted(once() for _ in range(runs))
    return {
        "latency_p50_ms": percentile(times, 50) * 1000,
        "latency_p95_ms": percentile(times, 95) * 1000,
        "tokens_per_second": new_tokens / statistics.median(times),
        "prompt_tokens": len(prompt_ids),
        "new_tokens": new_tokens,
        "runs": runs,
    }


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class MemoryMeter:
    """Peak memory of loading and running one model: CUDA's peak allocation on a GPU; on the
    CPU the growth of this process's resident set, sampled at the measuring points (the
    allocator may keep freed pages, so this is an upper bound on what the model needs)."""

    def __init__(self) -> None:
        free_memory()
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            self.start = _rss_bytes()
        self.peak = self.start

    def sample(self) -> None:
        now = torch.cuda.max_memory_allocated() if self.cuda else _rss_bytes()
        self.peak = max(self.peak, now)

    def result(self) -> dict[str, Any]:
        self.sample()
        return {
            "peak_memory_mb": round((self.peak - self.start) / 2**20, 2),
            "memory_measure": "cuda_peak_allocated" if self.cuda else "cpu_rss_growth",
        }


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def weight_bytes(model: Any) -> int:
    """Bytes the parameters and buffers hold (quantized tensors count their packed data)."""
    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        key = id(tensor)
        if key in seen:
            continue
        seen.add(key)
        total += _tensor_bytes(tensor)
    return total


def _tensor_bytes(tensor: torch.Tensor) -> int:
    inner = getattr(tensor, "__tensor_flatten__", None)
    if inner is not None and type(tensor) is not torch.nn.Parameter:
        names, _ctx = tensor.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(tensor, name)) for name in names)
    data = tensor.data if isinstance(tensor, torch.nn.Parameter) else tensor
    if type(data) is not torch.Tensor and hasattr(data, "__tensor_flatten__"):
        return _tensor_bytes(data)
    return data.numel() * data.element_size()


def folder_bytes(folder: str | Path) -> dict[str, int]:
    """On-disk size of a model folder: the weight files and everything."""
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    weights = sum(p.stat().st_size for p in files if p.suffix in {".safetensors", ".bin"})
    return {"weights_bytes": weights, "total_bytes": sum(p.stat().st_size for p in files)}


def config_dtype(model_dir: str | Path) -> torch.dtype | None:
    """The dtype a model folder's config declares (trained and merged weights keep it)."""
    import json

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("dtype") or config.get("torch_dtype")
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    return dtype if isinstance(dtype, torch.dtype) else None
