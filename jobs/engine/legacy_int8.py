"""Storage for `torch.ao.quantization.quantize_dynamic` models (the deprecated CPU path).

Its packed int8 Linear modules are not tensors transformers can save, and Hearth stores no
pickles, so this writes what they hold into safetensors by hand (no library does it): each
quantized Linear as int8 values + per-tensor scale and zero point, everything else as float,
and `hearth_quantization.json` naming the modules. Loading rebuilds the float model from its
config, quantizes it the same way and puts the stored int8 weights back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

MARKER = "hearth_quantization.json"
WEIGHTS = "model.safetensors"


def available() -> bool:
    quantization = getattr(getattr(torch, "ao", None), "quantization", None)
    return hasattr(quantization, "quantize_dynamic")


def _quantize(model: Any) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated upstream, on purpose
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _dynamic_linears(model: Any) -> dict[str, Any]:
    from torch.ao.nn.quantized.dynamic import Linear

    return {name: module for name, module in model.named_modules() if isinstance(module, Linear)}


def quantize_and_save(source: Path, output: Path, *, trust_remote_code: bool = False) -> None:
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    model.config.tie_word_embeddings = False  # the LM head becomes its own int8 module
    model = _quantize(model.eval())
    tensors: dict[str, torch.Tensor] = {}
    linears = _dynamic_linears(model)
    for name, module in linears.items():
        weight, bias = module._packed_params._weight_bias()
        tensors[f"{name}.qweight"] = weight.int_repr().contiguous()
        tensors[f"{name}.qscale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
        tensors[f"{name}.qzero"] = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach().contiguous()
    for key, value in model.state_dict().items():
        if (
            isinstance(value, torch.Tensor)
            and not value.is_quantized
            and "_packed_params" not in key
        ):
            tensors.setdefault(key, value.detach().contiguous())
    output.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(output / WEIGHTS), metadata={"format": "pt"})
    model.config.save_pretrained(output)
    (output / MARKER).write_text(
        json.dumps({"method": "legacy_dynamic_int8", "modules": sorted(linears)}, indent=2)
    )


def is_legacy(folder: str | Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def load(folder: str | Path, *, trust_remote_code: bool = False) -> Any:
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_config(
        config, dtype=torch.float32, trust_remote_code=trust_remote_code
    )
    tensors = load_file(str(folder / WEIGHTS))
    floats = {k: v for k, v in tensors.items() if not k.endswith((".qweight", ".qscale", ".qzero"))}
    model.load_state_dict(floats, strict=False)
    model = _quantize(model.eval())
    for name, module in _dynamic_linears(model).items():
        weight = torch._make_per_tensor_quantized_tensor(
            tensors[f"{name}.qweight"],
            float(tensors[f"{name}.qscale"][0]),
            int(tensors[f"{name}.qzero"][0]),
        )
        module.set_weight_bias(weight, tensors.get(f"{name}.bias"))
    return model
