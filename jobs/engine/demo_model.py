"""Build the tiny demo model: a byte-level BPE tokenizer trained on the demo data and a Qwen2
model with random weights (hidden size 64). Everything runs with no download, in seconds on CPU.

Django-free: used by the launcher's bootstrap and by tests alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

DEMO_DATA = Path(__file__).parent / "demo_data" / "demo_sft.jsonl"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML, as Qwen2 and DeepSeek-R1-Distill-Qwen use, so prompt formatting is exercised for real.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BUILD_VERSION = "1"  # bump to rebuild existing demo models after a change here


def demo_texts(path: Path = DEMO_DATA) -> list[str]:
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(
                "\n".join(v for v in (row["instruction"], row["input"], row["output"]) if v)
            )
    return texts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Byte level: any UTF-8 text (Chinese included) is representable, no unknown tokens.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",  # noqa: S106
        pad_token="<|endoftext|>",  # noqa: S106
        bos_token=None,
        model_max_length=512,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_demo_model(out_dir: Path, *, seed: int = 0, texts: list[str] | None = None) -> Path:
    """Write a complete HF model folder (config, safetensors weights, tokenizer) to `out_dir`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(texts or demo_texts())
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "hearth_demo.json").write_text(json.dumps({"build_version": BUILD_VERSION}))
    return out_dir


def is_current_demo(out_dir: Path) -> bool:
    marker = Path(out_dir) / "hearth_demo.json"
    try:
        return json.loads(marker.read_text())["build_version"] == BUILD_VERSION
    except (OSError, ValueError, KeyError):
        return False
