"""Validate a local model folder and read what the registry shows, without loading weights."""

from __future__ import annotations

import json
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


class ModelFolderError(ValueError):
    """The folder is not a usable Hugging Face causal LM."""


def inspect_model_dir(path: Path, *, allow_pickle: bool = False) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(f"{path} is not a folder")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelFolderError("config.json is missing")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelFolderError("no tokenizer files (tokenizer.json, tokenizer.model or vocab.json)")
    weights = sorted(path.glob("*.safetensors"))
    pickled = sorted(path.glob("*.bin")) + sorted(path.glob("*.pt"))
    if not weights:
        if pickled and not allow_pickle:
            raise ModelFolderError(
                "only pickle weights (.bin/.pt) found: they can execute code when loaded; "
                "convert to safetensors or ask an admin to allow pickle weights"
            )
        if not pickled:
            raise ModelFolderError("no weights (*.safetensors)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelFolderError(f"config.json is not valid JSON: {exc}") from exc
    return {
        "architecture": (config.get("architectures") or [config.get("model_type", "")])[0],
        "parameter_count": _count_parameters(weights) if weights else None,
        "dtype": str(config.get("torch_dtype") or config.get("dtype") or ""),
        "context_length": config.get("max_position_embeddings"),
        "license": _license(path),
    }


def _count_parameters(files: list[Path]) -> int:
    from safetensors import safe_open

    total = 0
    for file in files:
        with safe_open(str(file), framework="numpy") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
                shape = handle.get_slice(name).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                total += count
    return total


def _license(path: Path) -> str:
    readme = path / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8", errors="replace").splitlines()[:40]:
            if line.lower().startswith("license:"):
                return line.split(":", 1)[1].strip()[:100]
    return ""
