"""What GPUs this host has, without importing torch (the worker's main process stays light)."""

from __future__ import annotations

import os
import shutil
import subprocess


def detect_gpus() -> list[dict]:
    """GPUs visible to this process: index, name, memory in MiB. Empty on CPU-only hosts."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        index, name, memory = (part.strip() for part in line.split(",", 2))
        gpus.append({"index": int(index), "name": name, "memory_mib": int(float(memory))})
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        allowed = {v.strip() for v in visible.split(",") if v.strip()}
        gpus = [g for g in gpus if str(g["index"]) in allowed]
    return gpus
