"""LoRA merge job: `python -m jobs.engine.merge <spec.json>` (spec: model_specs.MergeSpec).

Folds the adapter into its base model (peft `merge_and_unload`) and saves full weights as
safetensors with the tokenizer: a model version that loads without peft or the base model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from . import task
from .model_specs import MergeSpec


def run(spec: MergeSpec, progress: task.Progress) -> dict[str, Any]:
    from . import inference

    if not inference.is_adapter(spec.model_dir):
        raise task.UserFacingError("This model version holds full weights: nothing to merge.")
    progress(0.1, "loading the base model and the adapter")
    tokenizer = inference.load_tokenizer(spec)
    model = inference.load_model(
        spec.model_dir,
        base_dir=spec.base_dir,
        trust_remote_code=spec.trust_remote_code,
        dtype=inference.config_dtype(spec.base_dir),
    )
    progress(0.6, "saving the merged weights")
    output = Path(spec.output_dir)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    parameters = sum(p.numel() for p in model.parameters())
    progress(1.0, "merged")
    return {"kind": "merge", "parameters": parameters, **inference.folder_bytes(output)}


if __name__ == "__main__":
    sys.exit(task.main(MergeSpec, run))
