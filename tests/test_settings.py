"""Settings from the environment: production refuses unsafe defaults; the embedded default
generates its secrets once, mode 0600."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

GOOD = {
    "HEARTH_AUDIT_KEY": "a" * 48,
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k" * 50,
    "HEARTH_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    "DATABASE_URL": "postgres://hearth@db:5432/hearth",
    "REDIS_URL": "redis://redis:6379/0",
    "ALLOWED_HOSTS": "hearth.example.org, other.example.org",
}
STRIP = ("DEBUG", "HEARTH_MASTER_KEY_FILE", "HEARTH_AUDIT_KEY_FILE", "HEARTH_TEST_DATA_DIR", *GOOD)


def _load(overrides: dict[str, str | None], data_dir) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in STRIP}
    env["HEARTH_DATA_DIR"] = str(data_dir)
    for key, value in overrides.items():
        if value is not None:
            env[key] = value
    code = (
        "import django; django.setup(); "
        "from django.conf import settings; print(settings.ALLOWED_HOSTS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_starts_with_proper_settings(tmp_path):
    result = _load(GOOD, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['hearth.example.org', 'other.example.org']"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DEBUG": "True"}, "DEBUG must be False"),
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-" + "x" * 40}, "SECRET_KEY must be set"),
        ({"HEARTH_MASTER_KEY": None}, "HEARTH_MASTER_KEY"),
        ({"HEARTH_MASTER_KEY": "too-short"}, "32 random bytes"),
        ({"DATABASE_URL": None}, "Set DATABASE_URL"),
        ({"REDIS_URL": None}, "Set REDIS_URL"),
    ],
)
def test_production_refuses_unsafe_settings(tmp_path, change, message):
    result = _load({**GOOD, **change}, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_embedded_default_generates_secrets_once(tmp_path):
    local = {"DJANGO_SETTINGS_MODULE": "config.settings.local"}
    assert _load(local, tmp_path).returncode == 0
    secret = tmp_path / "keys" / "secret_key"
    master = tmp_path / "keys" / "master.key"
    first = (secret.read_text(), master.read_text())
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert oct(master.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "keys").stat().st_mode & 0o777) == "0o700"
    assert _load(local, tmp_path).returncode == 0
    assert (secret.read_text(), master.read_text()) == first
    assert len(first[0].strip()) >= 50
