"""The audit trail: request ids, authentication events, append-only rows, who may read them."""

from __future__ import annotations

import json
import re

import pytest
from django.db import transaction

from accounts import roles
from audit import context
from audit.models import AppendOnlyError, AuditEvent
from audit.services import record
from tests.conftest import api_as

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # conftest's make_user default
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def auditor(make_user):
    return make_user("audrey", roles.AUDITOR)


# -- request ids ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/login/", 200),
        ("/", 302),
        ("/healthz", 200),
        ("/api/v1/", 401),
        ("/no-such-page/", 404),
        ("/static/css/hearth.css", 200),
    ],
)
def test_every_response_carries_a_request_id(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert GENERATED_ID.match(response["X-Request-ID"])


def test_each_request_gets_its_own_id(client):
    first = client.get("/login/")["X-Request-ID"]
    second = client.get("/login/")["X-Request-ID"]
    assert first != second


@pytest.mark.parametrize(
    "incoming", ["abc-123_def.456", "A" * 64, "0f8fad5b-d9cb-469f-a165-70867728950e"]
)
def test_a_valid_incoming_request_id_is_echoed(client, incoming):
    response = client.get("/login/", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["bad id!", "x" * 200, "short", "", "id;drop-table", "ünïcødé-id"],
    ids=["space-and-bang", "too-long", "too-short", "empty", "semicolon", "non-ascii"],
)
def test_a_malformed_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/login/", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert GENERATED_ID.match(response["X-Request-ID"])


def test_a_request_id_with_a_trailing_newline_is_replaced(client):
    response = client.get("/login/", HTTP_X_REQUEST_ID="abcdefgh\n")
    assert GENERATED_ID.match(response["X-Request-ID"])


@pytest.mark.parametrize("path", ["/login/", "/api/v1/", "/no-such-page/"])
def test_the_request_context_is_cleared_after_the_request(client, path):
    assert context.current() is None
    client.get(path, HTTP_X_REQUEST_ID="leak-check-0001")
    assert context.current() is None
    assert context.current_request_id() == ""


def test_events_outside_a_request_have_no_request_fields():
    event = record(action="test.outside")
    assert event.request_id == ""
    assert event.ip is None
    assert event.user_agent == ""


# -- authentication events --------------------------------------------------------------------
def test_login_through_the_form_is_audited(client, scientist):
    response = client.post(
        "/login/",
        {"username": "sci", "password": PASSWORD},
        HTTP_USER_AGENT="pytest-browser/1.0",
        HTTP_X_REQUEST_ID="login-request-0001",
    )

    assert response.status_code == 302
    assert response["X-Request-ID"] == "login-request-0001"
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor == scientist
    assert event.actor_username == "sci"
    assert event.outcome == AuditEvent.Outcome.ALLOWED
    assert event.request_id == "login-request-0001"
    assert event.ip == "127.0.0.1"
    assert event.user_agent == "pytest-browser/1.0"
    assert event.object_type == "auth.user"
    assert event.object_id == str(scientist.pk)


def test_a_wrong_password_is_audited_without_the_password(client, scientist):
    wrong = "Wrong-Password-Xyz-123"
    response = client.post(
        "/login/",
        {"username": "sci", "password": wrong},
        HTTP_X_REQUEST_ID="login-failed-0001",
    )

    assert response.status_code == 200  # the form again, with an error
    assert not AuditEvent.objects.filter(action="auth.login").exists()
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.actor is None
    assert event.actor_username == "sci"
    assert event.details["username"] == "sci"
    assert event.request_id == "login-failed-0001"
    assert event.ip == "127.0.0.1"
    row = json.dumps(AuditEvent.objects.filter(pk=event.pk).values().get(), default=str)
    assert wrong not in row
    assert "password" not in json.dumps(event.details).lower()


def test_a_failed_login_for_an_unknown_user_keeps_the_attempted_name(client):
    client.post("/login/", {"username": "ghost", "password": "whatever-123456"})
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor_username == "ghost"
    assert event.actor is None


def test_logout_is_audited(client, scientist):
    client.force_login(scientist)

    response = client.post("/logout/", HTTP_X_REQUEST_ID="logout-request-01")

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.logout")
    assert event.actor == scientist
    assert event.request_id == "logout-request-01"


# -- append-only ------------------------------------------------------------------------------
def save_changed(event: AuditEvent) -> None:
    event.action = "tampered"
    event.save()


def save_new_instance_with_existing_pk(event: AuditEvent) -> None:
    AuditEvent(pk=event.pk, action="tampered").save()


def queryset_update(event: AuditEvent) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(action="tampered")


def bulk_update(event: AuditEvent) -> None:
    event.action = "tampered"
    AuditEvent.objects.bulk_update([event], ["action"])


def instance_delete(event: AuditEvent) -> None:
    event.delete()


def queryset_delete(event: AuditEvent) -> None:
    AuditEvent.objects.filter(pk=event.pk).delete()


def all_delete(event: AuditEvent) -> None:
    AuditEvent.objects.all().delete()


@pytest.mark.parametrize(
    "tamper",
    [
        save_changed,
        save_new_instance_with_existing_pk,
        queryset_update,
        bulk_update,
        instance_delete,
        queryset_delete,
        all_delete,
    ],
)
def test_audit_events_cannot_be_changed_or_removed(scientist, tamper):
    event = record(action="datasets_app.dataset.create", actor=scientist)

    # A savepoint, so that the check below can still query after a refused write inside
    # Django's own atomic blocks (bulk_update).
    with pytest.raises(AppendOnlyError), transaction.atomic():
        tamper(event)

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.action == "datasets_app.dataset.create"


def test_an_event_keeps_the_user_name_after_the_user_is_deleted(scientist):
    event = record(action="datasets_app.dataset.create", actor=scientist)

    scientist.delete()

    event = AuditEvent.objects.get(pk=event.pk)
    assert event.actor is None
    assert event.actor_username == "sci"
    assert event.action == "datasets_app.dataset.create"


# -- reading the trail ------------------------------------------------------------------------
@pytest.fixture
def events(make_user, scientist):
    """Two users' events: one allowed and one denied for sci, one allowed for bob."""
    bob = make_user("bob", roles.DATA_SCIENTIST)
    record(action="datasets_app.dataset.create", actor=scientist, object_repr="sci-data")
    record(
        action="datasets_app.dataset.view",
        actor=scientist,
        outcome=AuditEvent.Outcome.DENIED,
        object_repr="secret-data",
    )
    record(action="jobs.job.create", actor=bob, object_repr="bob-job")
    return {"sci": scientist, "bob": bob}


def test_dashboard_shows_your_own_recent_activity(client, events):
    client.force_login(events["sci"])

    response = client.get("/")

    assert response.status_code == 200
    activity = list(response.context["activity"])
    assert activity
    assert {e.actor_username for e in activity} == {"sci"}
    page = response.content.decode()
    assert "datasets_app.dataset.create" in page
    assert "jobs.job.create" not in page


def test_dashboard_shows_everyones_activity_to_an_auditor(client, events, auditor):
    client.force_login(auditor)
    activity = client.get("/").context["activity"]
    assert {"sci", "bob"} <= {e.actor_username for e in activity}


def test_audit_page_is_forbidden_to_a_data_scientist(client, scientist):
    client.force_login(scientist)
    assert client.get("/audit/").status_code == 403


def test_audit_page_needs_login(client):
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"datasets_app.dataset.create", "datasets_app.dataset.view", "jobs.job.create"}),
        ("?user=bob", {"jobs.job.create"}),
        ("?outcome=denied", {"datasets_app.dataset.view"}),
        ("?user=sci&outcome=allowed", {"datasets_app.dataset.create"}),
        ("?action=datasets_app.", {"datasets_app.dataset.create", "datasets_app.dataset.view"}),
    ],
)
def test_audit_page_for_an_auditor_with_filters(client, events, auditor, query, expected):
    client.force_login(auditor)  # records auth.login for audrey, filtered out below

    response = client.get(f"/audit/{query}")

    assert response.status_code == 200
    actions = {e.action for e in response.context["page"]} - {"auth.login"}
    assert actions == expected


def test_audit_api_is_empty_for_a_data_scientist(events):
    response = api_as(events["sci"]).get("/api/v1/audit-events/")
    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert response.json()["results"] == []


def test_audit_api_detail_is_404_for_a_data_scientist(events):
    event = AuditEvent.objects.filter(actor_username="sci").first()
    response = api_as(events["sci"]).get(f"/api/v1/audit-events/{event.pk}/")
    assert response.status_code == 404


def test_audit_api_lists_events_for_an_auditor(events, auditor):
    response = api_as(auditor).get("/api/v1/audit-events/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    first = body["results"][0]
    assert {"action", "actor_username", "request_id", "ip", "outcome", "details"} <= set(first)
    assert first["action"] == "jobs.job.create"  # newest first


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?action=datasets_app.", {"datasets_app.dataset.create", "datasets_app.dataset.view"}),
        ("?action=jobs", {"jobs.job.create"}),
        ("?action=nothing.like.this", set()),
        ("?user=bob", {"jobs.job.create"}),
        ("?outcome=denied", {"datasets_app.dataset.view"}),
    ],
)
def test_audit_api_filters(events, auditor, query, expected):
    response = api_as(auditor).get(f"/api/v1/audit-events/{query}")
    assert response.status_code == 200
    assert {e["action"] for e in response.json()["results"]} == expected


def test_audit_api_an_invalid_filter_does_not_silently_drop_the_others(events, auditor):
    response = api_as(auditor).get("/api/v1/audit-events/?user=bob&since=not-a-date")
    if response.status_code == 200:
        assert {e["actor_username"] for e in response.json()["results"]} == {"bob"}
    else:
        assert response.status_code == 400
        assert "since" in response.json()["fields"]
