"""Export of the audit trail: CSV (UTF-8 with BOM, for Excel) and JSON Lines, streamed, with the
list's filters, recorded, and only for holders of `audit.export_auditevent`."""

from __future__ import annotations

import csv
import io
import json

import pytest

from accounts import roles
from audit.models import AuditEvent
from audit.services import record
from tests.conftest import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(make_user, scientist):
    bob = make_user("bob", roles.DATA_SCIENTIST)
    record(
        action="datasets_app.dataset.create",
        actor=scientist,
        object_repr="患者数据集",
        details={"name": "患者数据集"},
    )
    record(
        action="datasets_app.dataset.view",
        actor=scientist,
        outcome=AuditEvent.Outcome.DENIED,
        object_repr="机密",
    )
    record(action="jobs.job.create", actor=bob, object_repr='=HYPERLINK("http://x")')
    return {"sci": scientist, "bob": bob}


def export(user, query: str):
    response = api_as(user).get(f"/api/v1/audit-events/export/{query}")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def csv_rows(body: bytes) -> list[dict]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_csv_export_with_bom_and_chinese_text(events, auditor):
    response, body = export(auditor, "?format=csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="audit-events-' in response["Content-Disposition"]
    rows = csv_rows(body)
    assert [r["action"] for r in rows] == [
        "datasets_app.dataset.create",
        "datasets_app.dataset.view",
        "jobs.job.create",
        "audit.export",  # recorded before the rows are read: the export includes itself
    ]  # chain order, oldest first
    assert rows[0]["object_repr"] == "患者数据集"
    assert json.loads(rows[0]["details"]) == {"name": "患者数据集"}
    assert rows[0]["position"] == "1" and len(rows[0]["hash"]) == 64
    assert rows[0]["created_at"].endswith("+00:00")


def test_csv_cells_that_look_like_formulas_are_quoted(events, auditor):
    _, body = export(auditor, "?format=csv&user=bob")
    [row] = csv_rows(body)
    assert row["object_repr"] == '\'=HYPERLINK("http://x")'


def test_csv_is_the_default_format(events, auditor):
    response, body = export(auditor, "")
    assert response.status_code == 200
    assert body.startswith(b"\xef\xbb\xbfposition,")


def test_jsonl_export(events, auditor):
    response, body = export(auditor, "?format=jsonl")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body.decode("utf-8").splitlines()]
    assert [line["action"] for line in lines][:3] == [
        "datasets_app.dataset.create",
        "datasets_app.dataset.view",
        "jobs.job.create",
    ]
    assert lines[1]["object_repr"] == "机密"
    assert "患者数据集".encode() in body  # UTF-8, not \\u escapes


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("&user=bob", {"jobs.job.create"}),
        ("&outcome=denied", {"datasets_app.dataset.view"}),
        ("&action=datasets_app.", {"datasets_app.dataset.create", "datasets_app.dataset.view"}),
        ("&user=sci&outcome=allowed", {"datasets_app.dataset.create"}),
        ("&object_type=nothing", set()),
        ("&since=2000-01-01T00:00:00&until=2000-01-02T00:00:00", set()),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_exports_take_the_list_filters(events, auditor, fmt, query, expected):
    response, body = export(auditor, f"?format={fmt}{query}")
    assert response.status_code == 200
    if fmt == "csv":
        actions = {r["action"] for r in csv_rows(body)}
    else:
        actions = {json.loads(line)["action"] for line in body.decode().splitlines()}
    assert actions == expected


def test_the_export_is_recorded_with_its_filters(events, auditor):
    export(auditor, "?format=jsonl&user=bob&outcome=allowed")
    event = AuditEvent.objects.get(action="audit.export")
    assert event.actor_username == "audrey"
    assert event.details == {"format": "jsonl", "filters": {"user": "bob", "outcome": "allowed"}}


def test_export_is_refused_without_the_permission_and_the_refusal_recorded(events):
    response, _ = export(events["sci"], "?format=csv")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert AuditEvent.objects.filter(
        action="audit.auditevent.export", outcome="denied", actor_username="sci"
    ).exists()
    assert not AuditEvent.objects.filter(action="audit.export").exists()


def test_export_needs_authentication(api):
    assert api.get("/api/v1/audit-events/export/?format=csv").status_code == 401


def test_an_unknown_format_is_a_validation_error(events, auditor):
    response, _ = export(auditor, "?format=xlsx")
    assert response.status_code == 400
    assert "format" in response.json()["fields"]


def test_a_bad_filter_is_a_validation_error_not_the_whole_trail(events, auditor):
    response, _ = export(auditor, "?format=csv&since=not-a-date")
    assert response.status_code == 400
    assert "since" in response.json()["fields"]


def test_the_audit_page_offers_exports_with_its_filters(client, events, auditor):
    client.force_login(auditor)
    page = client.get("/audit/?user=bob&page=1").content.decode()
    assert "/api/v1/audit-events/export/?user=bob&amp;format=csv" in page
    assert "/api/v1/audit-events/export/?user=bob&amp;format=jsonl" in page


def test_the_audit_page_filters_by_object_and_date(client, events, auditor):
    client.force_login(auditor)
    response = client.get("/audit/?object_type=nothing")
    assert list(response.context["page"]) == []
    response = client.get("/audit/?since=2000-01-01T00:00:00&action=jobs.")
    assert {e.action for e in response.context["page"]} == {"jobs.job.create"}


def test_the_audit_page_records_a_refusal(client, scientist):
    client.force_login(scientist)
    assert client.get("/audit/").status_code == 403
    assert AuditEvent.objects.filter(action="audit.auditevent.view", outcome="denied").exists()
