"""Text watermarks through transformers' `WatermarkingConfig` (green-list "selfhash" scheme)
and `WatermarkDetector`, with the installation's secret key instead of the library default
(with the public default anyone could forge or strip-test the mark).

Django-free: the caller passes the key (an int) and the model's config and tokenizer.
"""

from __future__ import annotations

import copy
from typing import Any

BIAS = 3.0  # the library default is 2.0; decoded text re-tokenizes imperfectly, losing some mark
GREENLIST_RATIO = 0.25
CONTEXT_WIDTH = 1
SEEDING_SCHEME = "lefthash"
Z_THRESHOLD = 4.0
MIN_TOKENS = 16  # shorter texts cannot be judged: the z-score is noise


def config(key: int) -> Any:
    from transformers import WatermarkingConfig

    return WatermarkingConfig(
        greenlist_ratio=GREENLIST_RATIO,
        bias=BIAS,
        hashing_key=key,
        seeding_scheme=SEEDING_SCHEME,
        context_width=CONTEXT_WIDTH,
    )


def detect(text: str, *, key: int, model_config: Any, tokenizer: Any) -> dict[str, Any]:
    import torch
    from transformers import WatermarkDetector

    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    tokens = int(ids.shape[1])
    if tokens < MIN_TOKENS:
        return {
            "tokens": tokens,
            "z_score": None,
            "watermarked": None,
            "verdict": f"too short to judge (at least {MIN_TOKENS} tokens)",
        }
    if getattr(model_config, "bos_token_id", None) is None:
        # The detector compares the first id with the BOS id; models without one (Qwen2) get
        # an id no token has.
        model_config = copy.copy(model_config)
        model_config.bos_token_id = -1
    detector = WatermarkDetector(
        model_config=model_config,
        device="cpu",
        watermarking_config=config(key),
        ignore_repeated_ngrams=True,
        max_cache_size=512,
    )
    result = detector(ids.to(torch.long), z_threshold=Z_THRESHOLD, return_dict=True)
    z = float(result.z_score[0])
    marked = bool(result.prediction[0])
    return {
        "tokens": tokens,
        "z_score": z,
        "green_fraction": float(result.green_fraction[0]),
        "watermarked": marked,
        "verdict": "watermarked" if marked else "no watermark found",
        "z_threshold": Z_THRESHOLD,
    }
