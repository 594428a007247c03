"""The `main()` every model task shares (compress, evaluate, merge): read and validate the
spec, run the body with an event writer, turn failures into an `error` event and an exit code.

Exit codes as in train.py: 0 done, 2 invalid spec, 1 error, 143 stopped by SIGTERM (cancel).
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from .events import EventWriter
from .model_specs import REPORT, ModelTaskSpec
from .spec import SpecError

EXIT_OK, EXIT_ERROR, EXIT_SPEC, EXIT_TERMINATED = 0, 1, 2, 143
__all__ = ["REPORT", "main"]


class Stopped(Exception):
    """SIGTERM arrived (the job was cancelled): stop at the next progress point."""


class UserFacingError(Exception):
    """A failure caused by the job's input (no eval rows, an unsupported method): its message
    is shown to the user as is."""


class Progress:
    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer
        self.stop_requested = False

    def __call__(self, fraction: float, message: str) -> None:
        if self.stop_requested:
            raise Stopped
        self.writer.emit(
            "progress", fraction=round(min(max(fraction, 0.0), 1.0), 4), message=message
        )
        print(f"[hearth] {fraction:.0%} {message}", flush=True)


def main(
    spec_type: type[ModelTaskSpec],
    body: Callable[[Any, Progress], dict[str, Any]],
    argv: list[str] | None = None,
) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m jobs.engine.<task> <spec.json>", file=sys.stderr)
        return EXIT_SPEC
    try:
        spec = spec_type.load(argv[0])
        spec.validate()
    except SpecError as exc:
        print(f"invalid spec: {exc}", file=sys.stderr)
        _spec_error_event(argv[0], exc)
        return EXIT_SPEC
    writer = EventWriter(spec.events_path)
    progress = Progress(writer)

    def stop(signum: int, frame: FrameType | None) -> None:
        progress.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    try:
        writer.emit("start", spec=spec.to_dict())
        report = body(spec, progress)
        Path(spec.output_dir).mkdir(parents=True, exist_ok=True)
        text = json.dumps(report, ensure_ascii=False, indent=2, allow_nan=False, default=str)
        (Path(spec.output_dir) / REPORT).write_text(text + "\n", encoding="utf-8")
        writer.emit("done", output_dir=spec.output_dir, report=report)
        return EXIT_OK
    except Stopped:
        print("[hearth] stopped", flush=True)
        return EXIT_TERMINATED
    except UserFacingError as exc:
        writer.emit("error", kind="data", message=str(exc), traceback=None)
        print(f"[hearth] error: {exc}", flush=True)
        return EXIT_ERROR
    except Exception as exc:
        traceback.print_exc()
        kind = "oom" if "out of memory" in str(exc).lower() else "internal"
        writer.emit(
            "error",
            kind=kind,
            message=f"{exc.__class__.__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        return EXIT_ERROR
    finally:
        writer.close()


def _spec_error_event(spec_path: str, exc: SpecError) -> None:
    try:
        events_path = json.loads(Path(spec_path).read_text("utf-8")).get("events_path")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(events_path, str) and events_path:
        writer = EventWriter(events_path)
        writer.emit(
            "error",
            kind="spec",
            field=exc.field,
            message=exc.message,
            errors=[{"field": name, "message": text} for name, text in exc.errors],
            traceback=None,
        )
        writer.close()
