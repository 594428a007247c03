"""The playground, on the playground worker: generation with a small LRU cache of loaded model
versions, and watermark detection. Never imported by the web process's request path except
to enqueue (jobs.tasks.playground_*), so no model weights are ever loaded in a web worker.

A model version is decrypted into a private work folder, loaded, and the folder removed: the
plaintext weights live in memory only while cached.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings

from datasets_app import storage

from .models import ModelVersion

_cache: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
_lock = threading.Lock()  # one generation at a time per worker process; others wait in Redis


def watermark_key() -> int:
    """HEARTH_WATERMARK_KEY, else derived from the audit key (secret per installation)."""
    from audit.chain import audit_key

    secret = settings.HEARTH_WATERMARK_KEY.encode() or audit_key()
    digest = hmac.new(secret, b"hearth-text-watermark-v1", hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") or 1


def _load(version: ModelVersion) -> tuple[Any, Any]:
    from .engine import inference
    from .model_tasks import materialize

    if version.pk in _cache:
        _cache.move_to_end(version.pk)
        return _cache[version.pk]
    with storage.private_workdir(f"playground-{version.pk}") as work:
        folder = materialize(version, work / "model")
        from transformers import AutoTokenizer

        trust = version.base_model.trust_remote_code
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust)
        model = inference.load_model(
            folder,
            base_dir=version.base_model.location if version.is_adapter else "",
            trust_remote_code=trust,
        )
    _cache[version.pk] = (model, tokenizer)
    while len(_cache) > max(settings.HEARTH_PLAYGROUND_CACHE_SIZE, 1):
        _cache.popitem(last=False)
        inference.free_memory()
    return model, tokenizer


def _prompt_ids(tokenizer, options: dict) -> Any:
    prompt = options["prompt"]
    if options.get("chat_template", True) and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        if options.get("system"):
            messages.insert(0, {"role": "system", "content": options["system"]})
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False, return_tensors="pt")
    return tokenizer(prompt, return_tensors="pt")


def generate(version_id: int, options: dict) -> dict:
    import torch

    from .engine import watermark
    from .engine.inference import sync_cuda

    version = ModelVersion.objects.select_related("base_model").get(pk=version_id)
    with _lock:
        started = time.perf_counter()
        model, tokenizer = _load(version)
        load_s = time.perf_counter() - started
        inputs = _prompt_ids(tokenizer, options).to(next(model.parameters()).device)
        temperature = float(options.get("temperature", 0.7))
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(options.get("max_new_tokens", 64)),
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id,
        }
        if temperature > 0:
            kwargs |= {
                "do_sample": True,
                "temperature": temperature,
                "top_p": float(options.get("top_p", 0.9)),
            }
        else:
            kwargs["do_sample"] = False
        if options.get("watermark"):
            kwargs["watermarking_config"] = watermark.config(watermark_key())
        if options.get("seed") is not None:
            torch.manual_seed(int(options["seed"]))
        sync_cuda()
        begun = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**inputs, **kwargs)
        sync_cuda()
        elapsed = time.perf_counter() - begun
    new = out[0, inputs["input_ids"].shape[1] :]
    return {
        "text": tokenizer.decode(new, skip_special_tokens=True),
        "new_tokens": int(new.shape[0]),
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "latency_ms": elapsed * 1000,
        "tokens_per_second": int(new.shape[0]) / max(elapsed, 1e-9),
        "load_ms": load_s * 1000,
        "watermarked": bool(options.get("watermark")),
        "device": str(next(model.parameters()).device),
    }


def detect(version_id: int, text: str) -> dict:
    from .engine import watermark

    version = ModelVersion.objects.select_related("base_model").get(pk=version_id)
    with _lock:
        model, tokenizer = _load(version)
    return watermark.detect(
        text, key=watermark_key(), model_config=model.config, tokenizer=tokenizer
    )
