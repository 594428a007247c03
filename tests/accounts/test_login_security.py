"""Login throttling (django-axes, user name + address), password validators, session expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth.password_validation import get_default_password_validators
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # tests/conftest.py make_user


def login(client: Client, username: str, password: str, ip: str = "10.0.0.1", **extra):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra
    )


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def test_lockout_after_n_failures(client, scientist, limit):
    for _ in range(limit - 1):
        assert login(client, "sci", "wrong").status_code == 200  # the form again, with an error

    locked = login(client, "sci", "wrong")

    assert locked.status_code == 429
    page = locked.content.decode()
    assert 'id="locked-out"' in page and "15 minutes" in page
    # Even the right password is refused now, from this address.
    assert login(client, "sci", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    # The failed logins keep their audit events (audit/signals.py); the lockout has its own.
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == limit + 1
    lockouts = AuditEvent.objects.filter(action="auth.locked_out")
    assert lockouts.exists()
    assert {e.outcome for e in lockouts} == {"denied"}
    assert lockouts.first().actor_username == "sci"
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_lockout_is_per_user_name_and_address(client, scientist, make_user, limit):
    make_user("other")
    for _ in range(limit):
        login(client, "sci", "wrong", ip="10.0.0.1")

    # Same user from another address, and another user from the same address, still log in.
    elsewhere = Client()
    assert login(elsewhere, "sci", PASSWORD, ip="10.0.0.2").status_code == 302
    neighbour = Client()
    assert login(neighbour, "other", PASSWORD, ip="10.0.0.1").status_code == 302


def test_lockout_ends_after_the_cool_off(client, scientist, limit):
    for _ in range(limit):
        login(client, "sci", "wrong")
    assert login(client, "sci", PASSWORD).status_code == 429

    AccessAttempt.objects.update(
        attempt_time=timezone.now() - django_settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )

    assert login(client, "sci", PASSWORD).status_code == 302


def test_a_success_resets_the_failure_count(client, scientist, limit):
    for _ in range(limit - 1):
        login(client, "sci", "wrong")
    assert login(client, "sci", PASSWORD).status_code == 302
    client.post("/logout/")
    for _ in range(limit - 1):
        assert login(client, "sci", "wrong").status_code == 200


def test_json_clients_get_a_json_lockout(client, scientist, limit):
    for _ in range(limit - 1):
        login(client, "sci", "wrong")
    response = login(client, "sci", "wrong", HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert response.json()["detail"]


def test_lockout_settings_come_from_the_environment():
    base = (Path(django_settings.BASE_DIR) / "config/settings/base.py").read_text()
    assert 'env.int("HEARTH_LOGIN_FAILURE_LIMIT", default=5)' in base
    assert 'env.int("HEARTH_LOGIN_COOLOFF_MINUTES", default=15)' in base
    assert django_settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert django_settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert django_settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_password_validators_are_on_in_every_settings_module():
    names = {v.__class__.__name__ for v in get_default_password_validators()}
    assert {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    } <= names
    folder = Path(django_settings.BASE_DIR) / "config/settings"
    for module in ("local.py", "production.py", "test.py"):
        assert "AUTH_PASSWORD_VALIDATORS" not in (folder / module).read_text(), module


def test_password_change_enforces_validators(client, scientist):
    client.force_login(scientist)
    response = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]


def test_sessions_expire_after_inactivity():
    assert django_settings.SESSION_SAVE_EVERY_REQUEST is True
    assert django_settings.SESSION_COOKIE_AGE > 0
