"""`python -m jobs.engine.capabilities`: what this machine's Python can run, as JSON on stdout.

The worker runs it once at start, in a subprocess (its own process stays free of torch), and
reports the result with its heartbeat; the web side refuses jobs no live worker can run.
"""

from __future__ import annotations

import json
import sys


def probe() -> dict:
    import torch

    from .compress import supported_methods

    return {
        "cuda": torch.cuda.is_available(),
        "torch": torch.__version__,
        "compression": supported_methods(),
    }


if __name__ == "__main__":
    json.dump(probe(), sys.stdout)
    sys.exit(0)
