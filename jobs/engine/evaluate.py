"""Evaluation job: `python -m jobs.engine.evaluate <spec.json>` (spec: model_specs.EvaluateSpec).

On the dataset version's eval split (same rendering and seeded split as training):
  perplexity        token-weighted, on the answer tokens
  accuracy          each prompt answered greedily and scored against the reference:
                    exact (after Unicode/whitespace/case normalisation), contains, regex (the
                    pattern's group 1, or whole match, must equal the reference), or label (the
                    reference comes from `label_column`; the answer's first line must equal it)
  latency           per-request generation latency p50/p95 over the same prompts, and a fixed
                    prompt/generation-length measurement as in compression reports
  robustness        the prompts' user text perturbed (typos, homophones, synonym swaps) and
                    scored again; the report gives each perturbation's accuracy and its drop
Gates are applied by the web side, on this report.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
import unicodedata
from typing import Any

from . import task
from .model_specs import EvaluateSpec


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" .。!！?？,，;；:：\"'“”‘’")


def score(spec: EvaluateSpec, prediction: str, expected: str) -> bool:
    if spec.scorer == "contains":
        return normalise(expected) in normalise(prediction)
    if spec.scorer == "regex":
        match = re.search(spec.pattern, prediction)
        if match is None:
            return False
        found = match.group(1) if match.groups() else match.group(0)
        return normalise(found) == normalise(expected)
    if spec.scorer == "label":
        first_line = prediction.strip().splitlines()[0] if prediction.strip() else ""
        return normalise(first_line) == normalise(expected)
    return normalise(prediction) == normalise(expected)


def _expected(spec: EvaluateSpec, item) -> str:
    if spec.scorer == "label":
        return str(item.record.get(spec.label_column, "") or "")
    return item.expected


class Answerer:
    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int) -> None:
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.device = next(model.parameters()).device
        self.pad = tokenizer.pad_token_id
        self.latencies: list[float] = []

    def __call__(self, prompt: str) -> str:
        import torch

        from .inference import sync_cuda

        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        inputs = inputs.to(self.device)
        sync_cuda()
        started = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.pad,
            )
        sync_cuda()
        self.latencies.append(time.perf_counter() - started)
        return self.tokenizer.decode(
            out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )


def _accuracy(spec, answer: Answerer, items, progress, label: str) -> tuple[float, list[dict]]:
    correct, samples = 0, []
    for index, item in enumerate(items):
        prediction = answer(item.prompt)
        expected = _expected(spec, item)
        ok = score(spec, prediction, expected)
        correct += ok
        if len(samples) < 5:
            samples.append(
                {
                    "prompt": item.prompt[-300:],
                    "expected": expected[:300],
                    "prediction": prediction[:300],
                    "correct": ok,
                }
            )
        if index % 10 == 0:
            progress(index / len(items), f"{label}: {index} of {len(items)} prompts")
    return correct / len(items), samples


def _perturbed_items(spec: EvaluateSpec, tokenizer, records: list[dict], kind: str) -> list:
    from .data import resolve_format
    from .inference import eval_items
    from .perturb import perturb

    _fmt, columns = resolve_format(records, spec.format, spec.columns)
    user_roles = {"instruction", "input", "prompt", "system"}
    changed = []
    for number, record in enumerate(records):
        copy = dict(record)
        for role, column in columns.items():
            if role in user_roles and isinstance(copy.get(column), str):
                copy[column] = perturb(kind, copy[column], spec.seed + number)
            elif role == "messages" and isinstance(copy.get(column), list):
                copy[column] = [
                    {**m, "content": perturb(kind, str(m.get("content", "")), spec.seed + number)}
                    if isinstance(m, dict) and m.get("role", m.get("from")) in {"user", "human"}
                    else m
                    for m in copy[column]
                ]
        changed.append(copy)
    return eval_items(spec, tokenizer, changed)


def run(spec: EvaluateSpec, progress: task.Progress) -> dict[str, Any]:
    import torch

    from . import inference

    tokenizer = inference.load_tokenizer(spec)
    from .data import load_records

    # Read once: every perturbation starts from the same records.
    records = load_records(spec.data_path) if spec.data_path else []
    items = inference.eval_items(spec, tokenizer, records)
    if not items:
        raise task.UserFacingError(
            "The dataset version has no usable eval rows (empty, or no answer column)."
        )
    if spec.scorer == "label" and spec.label_column not in items[0].record:
        raise task.UserFacingError(f"The dataset has no column {spec.label_column!r}.")
    progress(0.02, "loading the model")
    model = inference.load_model(
        spec.model_dir, base_dir=spec.base_dir, trust_remote_code=spec.trust_remote_code
    )
    progress(0.05, "perplexity")
    ppl = inference.perplexity(model, items)
    answer = Answerer(model, tokenizer, spec.max_new_tokens)
    kinds = spec.perturbations if spec.robustness else []
    share = 0.85 / (1 + len(kinds))

    def stage(start: float):
        return lambda fraction, message: progress(start + share * fraction, message)

    accuracy, samples = _accuracy(spec, answer, items, stage(0.1), "accuracy")
    request_latencies = list(answer.latencies)
    robustness = {}
    for number, kind in enumerate(kinds, start=1):
        perturbed = _perturbed_items(spec, tokenizer, records, kind)
        perturbed_accuracy, _ = _accuracy(
            spec, answer, perturbed, stage(0.1 + share * number), kind
        )
        robustness[kind] = {
            "accuracy": perturbed_accuracy,
            "drop": accuracy - perturbed_accuracy,
            "examples": len(perturbed),
        }
    progress(0.96, "fixed-length latency")
    prompt_ids = inference.fixed_prompt_ids(tokenizer, items, spec.prompt_tokens)
    fixed = inference.generation_latency(
        model, tokenizer, prompt_ids, spec.max_new_tokens, spec.latency_runs
    )
    progress(1.0, "report ready")
    return {
        "kind": "evaluation",
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU",
        "examples": len(items),
        "scorer": spec.scorer,
        "metrics": {
            "accuracy": accuracy,
            "perplexity": ppl,
            "latency_p50_ms": inference.percentile(request_latencies, 50) * 1000,
            "latency_p95_ms": inference.percentile(request_latencies, 95) * 1000,
            "latency_mean_ms": statistics.fmean(request_latencies) * 1000,
            "robustness_drop": max((r["drop"] for r in robustness.values()), default=None),
        },
        "robustness": robustness,
        "fixed_length_latency": fixed,
        "samples": samples,
    }


if __name__ == "__main__":
    sys.exit(task.main(EvaluateSpec, run))
