"""docker-compose.yml, .env.example and the code agree. Needs neither Docker nor a database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

APP_SERVICES = ("migrate", "web", "worker-cpu", "worker-gpu", "worker-playground", "beat")
REQUIRED_SERVICES = ("postgres", "redis", *APP_SERVICES)
SECRETS = ("SECRET_KEY", "HEARTH_MASTER_KEY", "HEARTH_AUDIT_KEY", "POSTGRES_PASSWORD")
REQUIRED = (*SECRETS, "ALLOWED_HOSTS")
# Read by code, but no business in a production env file.
UNDOCUMENTED_OK = {
    "HEARTH_TEST_DATA_DIR",  # config/settings/test.py only
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",  # set by torchrun for the training engine
}

# `${NAME...}` but not the escaped `$${NAME}`, which the container's shell expands.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
DOCUMENTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
PY_READS = [
    re.compile(r"\benv(?:\.\w+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']"),
    re.compile(r"os\.environ(?:\.get|\.setdefault|\.pop)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']"),
    re.compile(r"os\.environ\[\s*[\"']([A-Z][A-Z0-9_]*)[\"']\s*\]"),
    re.compile(r"os\.getenv\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']"),
]
SHELL_READS = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@cache
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


def services() -> dict:
    return compose()["services"]


def documented() -> set[str]:
    return set(DOCUMENTED.findall(ENV_EXAMPLE.read_text()))


def interpolated() -> set[str]:
    return {name for name, _ in INTERPOLATION.findall(compose_text())}


def passed_through() -> set[str]:
    """Environment entries without a value: Compose copies them from .env when set there."""
    return {
        name
        for service in services().values()
        for name, value in (service.get("environment") or {}).items()
        if value is None
    }


def python_sources() -> list[Path]:
    """config/, every Django app (a top-level package with apps.py) and manage.py."""
    packages = [ROOT / "config"] + [p.parent for p in ROOT.glob("*/apps.py")]
    files = [ROOT / "manage.py"]
    for package in packages:
        files += [p for p in package.rglob("*.py") if "migrations" not in p.parts]
    return files


@cache
def read_by_python() -> frozenset[str]:
    names: set[str] = set()
    for path in python_sources():
        text = path.read_text(encoding="utf-8")
        for pattern in PY_READS:
            names.update(pattern.findall(text))
    return frozenset(names)


@cache
def read_anywhere() -> frozenset[str]:
    """Python reads plus the `hearth` entry script (HEARTH_TORCH_INDEX_URL lives there)."""
    script = (ROOT / "hearth").read_text(encoding="utf-8")
    return read_by_python() | set(SHELL_READS.findall(script))


def test_required_services_exist():
    missing = set(REQUIRED_SERVICES) - set(services())
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_production_settings_on_the_data_volume(name):
    service = services()[name]
    environment = service["environment"]
    assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert environment["HEARTH_DATA_DIR"] == "/data"
    assert "hearth-data:/data" in service["volumes"]
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HEARTH_MASTER_KEY", "ALLOWED_HOSTS"):
        assert environment.get(key), f"{name} does not set {key}"
    assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]


def test_app_services_wait_for_a_successful_migration():
    for name in set(APP_SERVICES) - {"migrate"}:
        depends = services()[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_every_compose_variable_is_documented():
    undocumented = (interpolated() | passed_through()) - documented()
    assert not undocumented, f"add to .env.example: {sorted(undocumented)}"


def test_every_documented_variable_is_read():
    """Each one reaches the code or is consumed by Compose itself (ports, GPU count, ...)."""
    unread = documented() - read_anywhere() - interpolated()
    assert not unread, f".env.example documents variables nothing reads: {sorted(unread)}"


def test_variables_passed_into_the_app_are_read_by_it():
    unread = passed_through() - read_by_python()
    assert not unread, f"passed to the containers but never read: {sorted(unread)}"


def test_every_variable_the_code_reads_is_documented():
    missing = read_by_python() - documented() - UNDOCUMENTED_OK
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_required_values_fail_loudly_and_have_no_default():
    references = INTERPOLATION.findall(compose_text())
    for name in REQUIRED:
        modifiers = [modifier for ref, modifier in references if ref == name]
        assert modifiers, f"{name} is never taken from the environment"
        for modifier in modifiers:
            assert modifier.startswith(":?") and len(modifier) > 2, (
                f"${{{name}{modifier}}} must use the ${{{name}:?message}} form"
            )
    for service_name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            if key in SECRETS:
                assert re.fullmatch(rf"\$\{{{key}:\?[^}}]+\}}", value), (
                    f"{service_name}: {key} must come from the environment, not the file"
                )
    example = ENV_EXAMPLE.read_text()
    for name in SECRETS:
        assert re.search(rf"^{name}=$", example, re.MULTILINE), f"{name} must be blank"


def test_worker_gpu_reserves_nvidia_gpus():
    service = services()["worker-gpu"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    nvidia = [d for d in devices if d.get("driver") == "nvidia"]
    assert nvidia, "worker-gpu reserves no NVIDIA device"
    assert "gpu" in nvidia[0]["capabilities"]
    assert str(nvidia[0]["count"]).startswith("${HEARTH_GPU_COUNT")
    assert service["build"]["args"]["TORCH_FLAVOR"] == "gpu"
    assert service["image"] != services()["worker-cpu"]["image"]
    command = service["command"]
    assert command[command.index("-Q") + 1] == "gpu"
    assert command[command.index("-c") + 1] == "1"


def test_cpu_worker_and_beat_commands():
    cpu = services()["worker-cpu"]["command"]
    assert cpu[:4] == ["celery", "-A", "config", "worker"]
    assert cpu[cpu.index("-Q") + 1] == "cpu"
    beat = services()["beat"]["command"]
    assert beat[:4] == ["celery", "-A", "config", "beat"]
    assert beat[beat.index("-s") + 1].startswith("/data/")


def test_web_has_a_healthcheck_on_healthz():
    healthcheck = services()["web"]["healthcheck"]
    test = healthcheck["test"]
    script = " ".join(test) if isinstance(test, list) else test
    assert "/healthz" in script
    assert "curl" not in script  # python:3.11-slim ships no curl
    assert "8000" in services()["web"]["ports"][0]


# -- the real Compose parser, where the machine has one -----------------------------------------
def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def filled_env_file(path: Path, *, drop: str = "") -> Path:
    values = {
        "SECRET_KEY": "k" * 50,
        "HEARTH_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "HEARTH_AUDIT_KEY": "b" * 48,
        "POSTGRES_PASSWORD": "0123456789abcdef",
        "ALLOWED_HOSTS": "hearth.example.org",
    }
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        if name == drop:
            continue
        lines.append(f"{name}={values[name]}" if name in values else line)
    path.write_text("\n".join(lines) + "\n")
    return path


def run_config(command: list[str], env_file: Path) -> subprocess.CompletedProcess:
    # Variables in our own environment would override the env file.
    clean = {k: v for k, v in os.environ.items() if k not in documented()}
    return subprocess.run(
        [*command, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
        cwd=ROOT,
    )


def test_docker_compose_accepts_the_file(tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = run_config(command, filled_env_file(tmp_path / "filled.env"))
    assert result.returncode == 0, result.stderr
    missing = run_config(command, filled_env_file(tmp_path / "partial.env", drop="SECRET_KEY"))
    assert missing.returncode != 0 and "SECRET_KEY" in missing.stderr


def test_dockerfile_collectstatic_step_runs_with_its_throwaway_settings(tmp_path):
    """The image build runs collectstatic under production settings; those refuse unsafe or
    missing values, so the build's throwaway values must keep satisfying them."""
    import os
    import re
    import subprocess
    import sys

    text = (ROOT / "Dockerfile").read_text()
    step = next(block for block in text.split("\nRUN ") if "collectstatic" in block)
    env = dict(re.findall(r'(\w+)="([^"]*)"', step.split("python manage.py")[0]))
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        HEARTH_STATIC_ROOT=str(tmp_path / "static"),
    )
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "static" / "css" / "hearth.css").is_file()
