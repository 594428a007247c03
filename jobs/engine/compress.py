"""Compression job: `python -m jobs.engine.compress <spec.json>` (spec: model_specs.CompressSpec).

Quantizes a model version and measures original and compressed on the same prompts and the
same eval rows: size on disk, peak memory, generation latency p50/p95 and tokens/s for a fixed
prompt and generation length, mean |Δ log-prob|, KL divergence and top-1 agreement per
position, and perplexity on the eval split. Speed is reported as measured: weight-only int8 is
often slower than bf16/fp32 on hardware without fast int8 kernels, and the report says so.

Methods (what the worker supports is detected, never assumed: `support()`):
  int8_weight_only     torchao Int8WeightOnlyConfig, CPU or GPU
  int8_dynamic         torchao Int8DynamicActivationInt8WeightConfig, CPU or GPU
  int4_weight_only     torchao Int4WeightOnlyConfig (group size 128), GPU only
  bnb_int8             bitsandbytes LLM.int8(), GPU only
  bnb_nf4              bitsandbytes 4-bit NF4 with double quantization, GPU only
  legacy_dynamic_int8  torch.ao.quantization.quantize_dynamic, CPU only, where this torch still
                       has it (deprecated upstream); stored by legacy_int8.py
torchao and bitsandbytes results are saved by transformers (`save_pretrained`, safetensors) and
reloaded from disk before they are measured, so the report describes the stored artifact.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from . import task
from .model_specs import COMPRESSION_METHODS, CompressSpec

TITLES = {
    "int8_weight_only": "int8 weight-only (torchao)",
    "int8_dynamic": "int8 dynamic activations + int8 weights (torchao)",
    "int4_weight_only": "int4 weight-only (torchao, GPU)",
    "bnb_int8": "bitsandbytes 8-bit (GPU)",
    "bnb_nf4": "bitsandbytes NF4 4-bit (GPU)",
    "legacy_dynamic_int8": "legacy quantize_dynamic int8 (CPU, deprecated)",
}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def support(method: str, *, cuda: bool | None = None) -> str | None:
    """None when this machine can run `method`, else why not (shown to the user)."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if method not in COMPRESSION_METHODS:
        return f"unknown method {method!r}"
    if method.startswith("int") and not _has("torchao"):
        return "torchao is not installed on the worker"
    if method == "int4_weight_only" and not cuda:
        return "int4 weight-only needs a CUDA GPU (torchao's int4 kernels)"
    if method.startswith("bnb_"):
        if not cuda:
            return "bitsandbytes quantization needs a CUDA GPU"
        if not _has("bitsandbytes"):
            return "bitsandbytes is not installed on the worker"
    if method == "legacy_dynamic_int8":
        if cuda:
            return "quantize_dynamic runs on the CPU only; this worker computes on a GPU"
        from .legacy_int8 import available

        if not available():
            return "this torch no longer has torch.ao.quantization.quantize_dynamic"
    return None


def supported_methods() -> dict[str, str | None]:
    import torch

    cuda = torch.cuda.is_available()
    return {method: support(method, cuda=cuda) for method in COMPRESSION_METHODS}


def quantization_config(method: str) -> Any:
    import torch

    if method.startswith("int"):
        from torchao.quantization import (
            Int4WeightOnlyConfig,
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
        )
        from transformers import TorchAoConfig

        config = {
            "int8_weight_only": Int8WeightOnlyConfig,
            "int8_dynamic": Int8DynamicActivationInt8WeightConfig,
            # tinygemm layout: torch's own int4 kernels (the "plain" layout needs mslk).
            "int4_weight_only": lambda: Int4WeightOnlyConfig(
                group_size=128, int4_packing_format="tile_packed_to_4d"
            ),
        }[method]()
        return TorchAoConfig(quant_type=config)
    from transformers import BitsAndBytesConfig

    if method == "bnb_int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def _measure(spec: CompressSpec, load, tokenizer, items, prompt_ids, announce):
    """Figures of one model (`load()` gives it) and its per-position log-probabilities."""
    from . import inference

    meter = inference.MemoryMeter()
    model = load()
    meter.sample()
    figures: dict[str, Any] = {"weights_memory_mb": inference.weight_bytes(model) / 2**20}
    announce("perplexity")
    figures["perplexity"] = inference.perplexity(model, items)
    meter.sample()
    logprobs = inference.log_probs(model, items, spec.compare_examples)
    meter.sample()
    figures |= inference.generation_latency(
        model, tokenizer, prompt_ids, spec.max_new_tokens, spec.latency_runs
    )
    figures |= meter.result()
    del model
    inference.free_memory()
    return figures, logprobs


def run(spec: CompressSpec, progress: task.Progress) -> dict[str, Any]:
    import torch

    from . import inference

    reason = support(spec.method)
    if reason:
        raise task.UserFacingError(f"{spec.method} is not available here: {reason}.")
    tokenizer = inference.load_tokenizer(spec)
    items = inference.eval_items(spec, tokenizer)
    prompt_ids = inference.fixed_prompt_ids(tokenizer, items, spec.prompt_tokens)
    work = Path(spec.output_dir).parent
    output = Path(spec.output_dir)
    source = Path(spec.model_dir)
    if inference.is_adapter(source):
        progress(0.02, "merging the LoRA adapter into its base model")
        source = inference.save_full_model(spec, work / "merged", tokenizer)

    progress(0.05, "measuring the original model")
    original, reference = _measure(
        spec,
        lambda: inference.load_model(source, trust_remote_code=spec.trust_remote_code),
        tokenizer,
        items,
        prompt_ids,
        lambda step: progress(0.05, f"original: {step}"),
    )
    original |= inference.folder_bytes(source)

    progress(0.45, f"quantizing: {TITLES[spec.method]}")
    if spec.method == "legacy_dynamic_int8":
        from . import legacy_int8

        legacy_int8.quantize_and_save(source, output, trust_remote_code=spec.trust_remote_code)
    else:
        model = inference.load_model(
            source,
            trust_remote_code=spec.trust_remote_code,
            quantization_config=quantization_config(spec.method),
        )
        model.save_pretrained(output, safe_serialization=True)
        del model
        inference.free_memory()
    tokenizer.save_pretrained(output)

    progress(0.55, "measuring the compressed model (reloaded from disk)")
    compressed, candidate = _measure(
        spec,
        lambda: inference.load_model(output, trust_remote_code=spec.trust_remote_code),
        tokenizer,
        items,
        prompt_ids,
        lambda step: progress(0.55, f"compressed: {step}"),
    )
    compressed |= inference.folder_bytes(output)
    comparison = inference.compare_log_probs(reference, candidate)
    comparison |= {
        "size_ratio": compressed["weights_bytes"] / max(original["weights_bytes"], 1),
        "speedup": compressed["tokens_per_second"] / max(original["tokens_per_second"], 1e-9),
        "memory_ratio": (
            compressed["peak_memory_mb"] / original["peak_memory_mb"]
            if original["peak_memory_mb"] > 0
            else None
        ),
    }
    notes = []
    if comparison["speedup"] < 1:
        notes.append(
            f"The compressed model generates {1 / comparison['speedup']:.2f}× slower than the "
            "original on this hardware: the quantized kernels do not pay off here."
        )
    if not items:
        notes.append("No eval rows: perplexity and agreement were not measured.")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    progress(1.0, "report ready")
    return {
        "kind": "compression",
        "method": spec.method,
        "method_title": TITLES[spec.method],
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "CPU",
        "dtype": str(inference.default_dtype()).removeprefix("torch."),
        "eval_examples": len(items),
        "compared_examples": min(len(items), spec.compare_examples),
        "original": original,
        "compressed": compressed,
        "comparison": comparison,
        "notes": notes,
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    import torch
    import transformers

    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    for name in ("torchao", "bitsandbytes"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return versions


if __name__ == "__main__":
    sys.exit(task.main(CompressSpec, run))
