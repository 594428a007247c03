"""Text generation with a registered model, on the worker (never in the web process).

Django-free: the caller passes the model folder. Used by augmentation's context extension and,
later, the playground.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def load_generator(
    model_dir: Path, *, max_new_tokens: int = 32, seed: int = 0, trust_remote_code: bool = False
) -> Callable[[str], str]:
    """A `generate(prompt) -> continuation` callable (greedy decoding: reproducible)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, trust_remote_code=trust_remote_code, use_safetensors=True
    ).to(device)
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def generate(prompt: str) -> str:
        inputs = tokenizer(prompt, return_tensors="pt", truncation=True, max_length=256).to(device)
        with torch.no_grad():
            output = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return tokenizer.decode(new_tokens, skip_special_tokens=True)

    return generate
