"""The audit key: required in production, generated once (0600) for the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k" * 50,
    "HEARTH_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    "HEARTH_AUDIT_KEY": "a" * 48,
    "DATABASE_URL": "postgres://hearth@db:5432/hearth",
    "REDIS_URL": "redis://redis:6379/0",
    "ALLOWED_HOSTS": "hearth.example.org",
}


def _load(env_vars: dict[str, str | None], data_dir) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HEARTH_") and k not in PRODUCTION and k != "DEBUG"
    }
    env["HEARTH_DATA_DIR"] = str(data_dir)
    env.update({k: v for k, v in env_vars.items() if v is not None})
    code = (
        "import django; django.setup(); from audit.chain import audit_key; print(len(audit_key()))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_starts_with_an_audit_key(tmp_path):
    result = _load(PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "48"


def test_production_takes_the_audit_key_from_a_file(tmp_path):
    key_file = tmp_path / "audit.key"
    key_file.write_text("f" * 40 + "\n")
    result = _load(
        {**PRODUCTION, "HEARTH_AUDIT_KEY": None, "HEARTH_AUDIT_KEY_FILE": str(key_file)}, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "40"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"HEARTH_AUDIT_KEY": None}, "HEARTH_AUDIT_KEY"),
        ({"HEARTH_AUDIT_KEY": "short"}, "32+ characters"),
        (
            {"HEARTH_AUDIT_KEY": None, "HEARTH_AUDIT_KEY_FILE": "/nonexistent/audit.key"},
            "HEARTH_AUDIT_KEY_FILE",
        ),
    ],
)
def test_production_refuses_a_missing_or_weak_audit_key(tmp_path, change, message):
    result = _load({**PRODUCTION, **change}, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_the_embedded_default_generates_the_audit_key_once(tmp_path):
    local = {"DJANGO_SETTINGS_MODULE": "config.settings.local"}
    assert _load(local, tmp_path).returncode == 0
    key = tmp_path / "keys" / "audit.key"
    first = key.read_text()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert len(first.strip()) >= 32
    assert _load(local, tmp_path).returncode == 0
    assert key.read_text() == first
