"""How long `./hearth up` takes to become ready, and how much memory the running platform uses.

    .venv/bin/python bench/platform_footprint.py [--keep-venv-stamp]

Starts the platform on a throwaway data directory, waits for /readyz, then sums the resident
(RSS) and proportional (PSS, shared pages split fairly) memory of every process it started,
grouped by component. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return json.load(r)["ready"]
    except (OSError, urllib.error.HTTPError, ValueError):
        return False


def memory_by_component(marker: str) -> dict[str, tuple[int, int, int]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() not in (proc / "environ").read_bytes():
                continue
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            rollup = (proc / "smaps_rollup").read_text()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:]}
        name = next(
            (n for n in ("redis-server", "celery", "gunicorn", "config.launcher") if n in cmd),
            cmd.split()[0],
        )
        totals[name][0] += 1
        totals[name][1] += fields.get("Rss", 0)
        totals[name][2] += fields.get("Pss", 0)
    return {k: tuple(v) for k, v in totals.items()}


def main() -> int:
    port, marker = free_port(), f"bench-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as data:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(HEARTH_DATA_DIR=data, HEARTH_PORT=str(port), HEARTH_BENCH_MARK=marker)
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(ROOT / "hearth"), "up"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while not ready(port):
                if proc.poll() is not None or time.monotonic() - started > 600:
                    print("platform did not become ready", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            print(f"ready after {time.monotonic() - started:.1f} s (fresh data directory)")
            time.sleep(5)  # let the worker pool and first heartbeats settle
            rows = memory_by_component(marker)
            print(f"{'component':<18}{'procs':>6}{'RSS MiB':>10}{'PSS MiB':>10}")
            for name, (count, rss, pss) in sorted(rows.items()):
                print(f"{name:<18}{count:>6}{rss / 1024:>10.0f}{pss / 1024:>10.0f}")
            total_rss = sum(r[1] for r in rows.values()) / 1024
            total_pss = sum(r[2] for r in rows.values()) / 1024
            print(f"{'total':<18}{'':>6}{total_rss:>10.0f}{total_pss:>10.0f}")
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
