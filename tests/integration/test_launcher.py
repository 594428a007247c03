"""Command one itself: `./hearth up` on a fresh data directory, then again on the same one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _readyz(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        return json.load(exc)
    except OSError:
        return {}


def _processes_with(marker: str) -> list[str]:
    """Processes whose environment carries this run's marker (i.e. started by that launcher)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def _run_platform(data_dir: Path, port: int, marker: str) -> tuple[str, float]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "HEARTH_TEST_DATA_DIR"}
    }
    env.update(HEARTH_DATA_DIR=str(data_dir), HEARTH_PORT=str(port), HEARTH_LAUNCH_MARK=marker)
    started = time.monotonic()
    launcher = subprocess.Popen(
        [str(ROOT / "hearth"), "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: launcher.poll() is not None or _readyz(port).get("workers", 0) >= 1,
            300,
            "/readyz to report a live worker",
        )
        assert launcher.poll() is None, launcher.stdout.read()
        ready_after = time.monotonic() - started
        assert _readyz(port)["ready"] is True
        launcher.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        output, _ = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 0, output
    return output, ready_after


def test_hearth_up_starts_everything_and_ctrl_c_leaves_nothing_behind(tmp_path):
    data_dir, port, marker = tmp_path / "var", free_port(), f"mark-{uuid.uuid4().hex}"

    output, seconds = _run_platform(data_dir, port, marker)
    print(f"first start: ready after {seconds:.1f}s")
    password = re.search(r"Password:\s+(\S+)", output)
    assert password, output
    assert f"http://127.0.0.1:{port}/" in output
    assert _processes_with(marker) == []
    assert oct((data_dir / "keys" / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"

    # Second run reuses the data: same account, no new password, same secret key.
    secret = (data_dir / "keys" / "secret_key").read_text()
    output, seconds = _run_platform(data_dir, port, marker)
    print(f"second start: ready after {seconds:.1f}s")
    assert "existing account" in output and "Password:" not in output
    assert (data_dir / "keys" / "secret_key").read_text() == secret
    assert _processes_with(marker) == []
