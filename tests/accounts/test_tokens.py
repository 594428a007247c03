"""Personal API tokens: issued once, hashed at rest, expiring, revocable, audited."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from tests.conftest import api_as

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens/"
DATASETS = "/api/v1/datasets/"


def create_token(user, **data) -> dict:
    response = api_as(user).post(TOKENS, {"name": "ci", **data}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


# -- issuing ----------------------------------------------------------------------------------
def test_create_returns_the_raw_token_once(scientist):
    body = create_token(scientist, expires_in_days=30)

    assert body["token"].startswith("hth_")
    assert len(body["token"]) > 40
    assert body["name"] == "ci"
    assert body["prefix"] == body["token"][:12]
    assert body["is_active"] is True
    expected_expiry = timezone.now() + timedelta(days=30)
    expires_at = ApiToken.objects.get(pk=body["id"]).expires_at
    assert abs(expires_at - expected_expiry) < timedelta(minutes=5)


def test_only_the_sha256_of_the_token_is_stored(scientist):
    body = create_token(scientist)
    raw = body["token"]

    token = ApiToken.objects.get(pk=body["id"])
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert not any(raw in value for value in stored)


def test_list_and_detail_never_contain_the_raw_token(scientist):
    body = create_token(scientist)
    client = api_as(scientist)

    listing = client.get(TOKENS)
    detail = client.get(f"{TOKENS}{body['id']}/")

    assert listing.status_code == 200
    assert [t["id"] for t in listing.json()["results"]] == [body["id"]]
    assert detail.status_code == 200
    for response in (listing, detail):
        assert body["token"] not in response.content.decode()
        assert "key_hash" not in response.content.decode()
    assert "token" not in listing.json()["results"][0]
    assert "token" not in detail.json()


def test_default_expiry_is_the_configured_default(scientist):
    body = create_token(scientist)
    expires_at = ApiToken.objects.get(pk=body["id"]).expires_at
    expected = timezone.now() + timedelta(days=settings.HEARTH_TOKEN_DEFAULT_DAYS)
    assert abs(expires_at - expected) < timedelta(minutes=5)


@pytest.mark.parametrize("days", [0, -1, settings.HEARTH_TOKEN_MAX_DAYS + 1])
def test_expiry_outside_the_allowed_range_is_refused(scientist, days):
    response = api_as(scientist).post(
        TOKENS, {"name": "ci", "expires_in_days": days}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "expires_in_days" in body["fields"]
    assert not ApiToken.objects.exists()


def test_a_blank_name_is_refused(scientist):
    response = api_as(scientist).post(TOKENS, {"name": "  "}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["fields"]


def test_anonymous_cannot_create_tokens(api):
    response = api.post(TOKENS, {"name": "ci"}, format="json")
    assert response.status_code == 401
    assert "detail" in response.json()
    assert not ApiToken.objects.exists()


# -- authenticating ---------------------------------------------------------------------------
def test_bearer_token_authenticates_a_plain_client(scientist):
    raw = create_token(scientist)["token"]

    response = bearer(raw).get(DATASETS)

    assert response.status_code == 200
    assert "results" in response.json()
    assert ApiToken.objects.get(user=scientist).last_used_at is not None


def test_token_acts_as_its_owner(scientist):
    raw = create_token(scientist)["token"]

    response = bearer(raw).post(DATASETS, {"name": "via token"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["owner"] == scientist.username


def expire(token: ApiToken, user) -> None:
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def revoke_via_api(token: ApiToken, user) -> None:
    assert api_as(user).delete(f"{TOKENS}{token.pk}/").status_code == 204


def deactivate_owner(token: ApiToken, user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize(
    "spoil",
    [expire, revoke_via_api, deactivate_owner],
    ids=["expired", "revoked", "inactive-user"],
)
def test_unusable_tokens_answer_401(scientist, spoil):
    raw = create_token(scientist)["token"]
    assert bearer(raw).get(DATASETS).status_code == 200
    spoil(ApiToken.objects.get(user=scientist), scientist)

    response = bearer(raw).get(DATASETS)

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer hth_not-a-real-token", "Bearer ", "Bearer two words"],
    ids=["unknown", "empty", "malformed"],
)
def test_wrong_tokens_answer_401(scientist, header):
    create_token(scientist)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(DATASETS)

    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_failed_token_is_audited_as_denied(scientist):
    response = bearer("hth_wrongwrongwrong").get(DATASETS, HTTP_X_REQUEST_ID="token-fail-0001")

    assert response.status_code == 401
    event = AuditEvent.objects.get(action="auth.token_failed")
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.actor is None
    assert event.request_id == "token-fail-0001"
    assert event.ip == "127.0.0.1"


def test_revoked_token_shows_revoked_and_inactive(scientist):
    body = create_token(scientist)
    client = api_as(scientist)

    assert client.delete(f"{TOKENS}{body['id']}/").status_code == 204

    detail = client.get(f"{TOKENS}{body['id']}/").json()
    assert detail["revoked_at"] is not None
    assert detail["is_active"] is False
    # The row stays for the audit trail.
    assert ApiToken.objects.filter(pk=body["id"]).exists()


# -- ownership --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["get", "delete"])
def test_another_users_token_is_invisible(make_user, scientist, method):
    body = create_token(scientist)
    other = make_user("mallory", "Data Scientist")

    response = getattr(api_as(other), method)(f"{TOKENS}{body['id']}/")

    assert response.status_code == 404
    assert response.json()["detail"]
    assert ApiToken.objects.get(pk=body["id"]).revoked_at is None
    assert bearer(body["token"]).get(DATASETS).status_code == 200


def test_the_list_shows_only_your_own_tokens(make_user, scientist):
    create_token(scientist)
    other = make_user("mallory", "Data Scientist")

    assert api_as(other).get(TOKENS).json()["count"] == 0
    assert api_as(scientist).get(TOKENS).json()["count"] == 1


# -- audit ------------------------------------------------------------------------------------
def test_create_and_revoke_are_audited(scientist):
    body = create_token(scientist)
    api_as(scientist).delete(f"{TOKENS}{body['id']}/")

    for action in ("accounts.token.create", "accounts.token.revoke"):
        event = AuditEvent.objects.get(action=action)
        assert event.actor == scientist
        assert event.actor_username == scientist.username
        assert event.object_type == "accounts.apitoken"
        assert event.object_id == str(body["id"])
        assert body["token"] not in str(event.details)
        assert body["token"] not in event.object_repr


# -- management command -----------------------------------------------------------------------
def test_create_api_token_command_prints_a_working_token(scientist):
    out = StringIO()
    call_command("create_api_token", scientist.username, "--days", "7", stdout=out)

    raw = out.getvalue().strip()
    assert raw.startswith("hth_")
    token = ApiToken.objects.get(user=scientist)
    assert token.name == "cli"
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert bearer(raw).get(DATASETS).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "nobody"),
        (["sci", "--days", "0"], "between"),
    ],
    ids=["unknown-user", "bad-expiry"],
)
def test_create_api_token_command_errors(scientist, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", *args, stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_create_api_token_command_refuses_an_inactive_user(scientist):
    scientist.is_active = False
    scientist.save(update_fields=["is_active"])
    with pytest.raises(CommandError):
        call_command("create_api_token", scientist.username, stdout=StringIO())


# -- UI ---------------------------------------------------------------------------------------
ISSUED = re.compile(r'<pre class="token"><code>([^<]+)</code></pre>')


@pytest.fixture
def ui(client, scientist):
    client.force_login(scientist)
    return client


def test_ui_shows_a_new_token_exactly_once(ui, scientist):
    created = ui.post("/account/tokens/", {"name": "laptop", "expires_in_days": 30})

    assert created.status_code == 200
    match = ISSUED.search(created.content.decode())
    assert match, created.content.decode()
    raw = match.group(1)
    assert raw.startswith("hth_")
    token = ApiToken.objects.get(user=scientist)
    assert token.name == "laptop"
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()

    again = ui.get("/account/tokens/")

    assert again.status_code == 200
    page = again.content.decode()
    assert raw not in page
    assert not ISSUED.search(page)
    assert "laptop" in page
    assert token.prefix in page


def test_ui_rejects_an_out_of_range_expiry(ui):
    response = ui.post(
        "/account/tokens/",
        {"name": "laptop", "expires_in_days": settings.HEARTH_TOKEN_MAX_DAYS + 1},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["expires_in_days"]
    assert not ApiToken.objects.exists()


def test_ui_needs_login(client):
    response = client.get("/account/tokens/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_ui_revoke(ui, scientist):
    body = create_token(scientist)

    response = ui.post(f"/account/tokens/{body['id']}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == "/account/tokens/"
    assert ApiToken.objects.get(pk=body["id"]).revoked_at is not None
    assert bearer(body["token"]).get(DATASETS).status_code == 401
    assert AuditEvent.objects.filter(
        action="accounts.token.revoke", object_id=str(body["id"])
    ).exists()


def test_ui_revoke_needs_post(ui, scientist):
    body = create_token(scientist)
    assert ui.get(f"/account/tokens/{body['id']}/revoke/").status_code == 405
    assert ApiToken.objects.get(pk=body["id"]).revoked_at is None


def test_ui_cannot_revoke_another_users_token(make_user, ui):
    other = make_user("mallory", "Data Scientist")
    body = create_token(other)

    response = ui.post(f"/account/tokens/{body['id']}/revoke/")

    assert response.status_code == 404
    assert ApiToken.objects.get(pk=body["id"]).revoked_at is None
