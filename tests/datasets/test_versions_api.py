"""Upload, immutable versions, encryption at rest, preview with field-level masking, download."""

from __future__ import annotations

import hashlib
import json

import pytest
from guardian.shortcuts import assign_perm

from accounts import roles
from audit.models import AuditEvent
from datasets_app.models import DatasetVersion, ImmutableVersionError
from tests.conftest import api_as
from tests.datasets.conftest import ALPACA_ROWS, jsonl_bytes, upload

pytestmark = pytest.mark.django_db


def _stored_files(storage_dir):
    return [p for p in storage_dir.rglob("*") if p.is_file()]


def test_upload_jsonl_creates_an_encrypted_version(owner, dataset, private_storage):
    response = upload(api_as(owner), dataset, jsonl_bytes(ALPACA_ROWS))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["number"], body["row_count"], body["operation"]) == (1, 3, "upload")
    assert body["schema"]["shape"] == "alpaca"
    assert body["source_format"] == "jsonl"
    files = _stored_files(private_storage)
    assert len(files) == 1
    stored = files[0].read_bytes()
    assert stored.startswith(b"HRTH")
    # Plaintext never reaches the storage volume.
    assert "身份证".encode() not in stored and b"Summarise" not in stored
    version = DatasetVersion.objects.get(pk=body["id"])
    normalized = jsonl_bytes(ALPACA_ROWS)
    assert version.sha256 == hashlib.sha256(normalized).hexdigest()
    assert AuditEvent.objects.filter(
        action="datasets_app.version.upload", object_id=str(version.pk)
    ).exists()


def test_gbk_csv_is_detected_and_normalised_to_utf8(owner, dataset):
    content = "患者姓名,诊断,金额\n张三,高血压,12000\n李四,糖尿病,56000\n".encode("gbk")
    body = upload(api_as(owner), dataset, content, "export.csv").json()
    assert body["source_format"] == "csv"
    assert body["source_encoding"].lower() in {"gb18030", "gbk"}
    preview = api_as(owner).get(f"/api/v1/dataset-versions/{body['id']}/preview/").json()
    assert preview["rows"][0]["患者姓名"] == "张三"


def test_identical_reupload_is_detected(owner, dataset):
    client = api_as(owner)
    assert upload(client, dataset, jsonl_bytes(ALPACA_ROWS)).status_code == 201
    again = upload(client, dataset, jsonl_bytes(ALPACA_ROWS), "copy.jsonl")
    assert again.status_code == 400
    assert "identical to version 1" in again.json()["detail"]
    assert dataset.versions.count() == 1


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"", "empty.jsonl", "empty"),
        (b"   \n\n", "blank.txt", "empty"),
        (bytes(range(256)) * 64, "blob.bin", "binary"),
        (b"PK\x03\x04" + b"\x00" * 200, "sheet.xlsx", "zip"),
        (b'[{"a": 1}, {"a": ', "broken.json", ""),
    ],
)
def test_unusable_files_create_nothing_and_say_why(
    owner, dataset, private_storage, settings, content, name, expected
):
    response = upload(api_as(owner), dataset, content, name)
    assert response.status_code == 400, response.content
    assert expected.lower() in response.json()["detail"].lower()
    assert dataset.versions.count() == 0
    assert _stored_files(private_storage) == []
    uploads = settings.DATA_DIR / "work" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_malformed_rows_are_reported_with_line_numbers(owner, dataset):
    lines = [json.dumps({"text": f"row {i}"}) for i in range(5)]
    lines[2] = "{not json"
    body = upload(api_as(owner), dataset, ("\n".join(lines) + "\n").encode()).json()
    assert body["row_count"] == 4
    assert body["validation"]["error_count"] == 1
    assert body["validation"]["errors"][0]["line"] == 3


def test_size_limit_refuses_before_reading_the_body(owner, dataset, settings):
    settings.HEARTH_MAX_UPLOAD_BYTES = 1000
    response = upload(api_as(owner), dataset, b'{"text": "x"}\n' * 20000)
    assert response.status_code == 413
    assert "upload limit" in response.json()["detail"]
    assert dataset.versions.count() == 0


def test_size_limit_stops_a_streaming_upload(owner, dataset, settings):
    settings.HEARTH_MAX_UPLOAD_BYTES = 1000  # body within the header slack: the handler stops it
    response = upload(api_as(owner), dataset, b'{"text": "x"}\n' * 300)
    assert response.status_code == 413
    assert dataset.versions.count() == 0


@pytest.fixture
def version(owner, dataset):
    body = upload(api_as(owner), dataset, jsonl_bytes(ALPACA_ROWS)).json()
    return DatasetVersion.objects.get(pk=body["id"])


@pytest.fixture
def viewer_only(make_user, dataset):
    """A colleague the dataset is shared with for viewing, without raw access."""
    user = make_user("colleague", roles.DATA_SCIENTIST)
    assign_perm("datasets_app.view_dataset", user, dataset)
    return user


def test_preview_masks_sensitive_columns_without_view_raw(owner, viewer_only, version):
    api_as(owner).patch(
        f"/api/v1/dataset-versions/{version.pk}/", {"sensitive_columns": ["input"]}, format="json"
    )
    raw = api_as(owner).get(f"/api/v1/dataset-versions/{version.pk}/preview/").json()
    masked = api_as(viewer_only).get(f"/api/v1/dataset-versions/{version.pk}/preview/").json()
    assert raw["raw"] is True and "110105199003071239" in raw["rows"][0]["input"]
    assert masked["raw"] is False and masked["masked_columns"] == ["input"]
    assert all("1101" not in str(row["input"]) for row in masked["rows"])
    assert masked["rows"][0]["instruction"] == raw["rows"][0]["instruction"]
    events = AuditEvent.objects.filter(action="datasets_app.version.preview")
    assert {e.actor_username: e.details["raw"] for e in events} == {
        "owner": True,
        "colleague": False,
    }


def test_download_needs_view_raw_and_streams_the_plaintext(owner, viewer_only, version):
    denied = api_as(viewer_only).get(f"/api/v1/dataset-versions/{version.pk}/download/")
    assert denied.status_code == 403
    assert AuditEvent.objects.filter(
        action="datasets_app.dataset.view_raw", outcome="denied"
    ).exists()
    response = api_as(owner).get(f"/api/v1/dataset-versions/{version.pk}/download/")
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    assert content == jsonl_bytes(ALPACA_ROWS)
    assert response["X-Content-SHA256"] == hashlib.sha256(content).hexdigest()
    assert AuditEvent.objects.filter(
        action="datasets_app.version.download", actor_username="owner"
    ).exists()


def test_marking_sensitive_columns(owner, viewer_only, version):
    url = f"/api/v1/dataset-versions/{version.pk}/"
    assert (
        api_as(viewer_only).patch(url, {"sensitive_columns": []}, format="json").status_code == 403
    )
    bad = api_as(owner).patch(url, {"sensitive_columns": ["nope"]}, format="json")
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    ok = api_as(owner).patch(url, {"sensitive_columns": ["output", "input"]}, format="json")
    assert ok.json()["sensitive_columns"] == ["input", "output"]


def test_versions_are_immutable(version):
    version.row_count = 99
    with pytest.raises(ImmutableVersionError):
        version.save()


def test_invisible_versions_answer_404(make_user, version):
    stranger = api_as(make_user("stranger", roles.DATA_SCIENTIST))
    for suffix in ("", "preview/", "download/"):
        assert stranger.get(f"/api/v1/dataset-versions/{version.pk}/{suffix}").status_code == 404
    assert stranger.get(f"/api/v1/datasets/{version.dataset_id}/versions/").status_code == 404
    assert stranger.get("/api/v1/dataset-versions/").json()["count"] == 0


def test_upload_needs_change_permission(viewer_only, dataset):
    response = upload(api_as(viewer_only), dataset, jsonl_bytes(ALPACA_ROWS))
    assert response.status_code == 403
    assert dataset.versions.count() == 0


def test_version_pages_render(owner, version, client):
    client.force_login(owner)
    page = client.get(f"/datasets/{version.dataset_id}/").content.decode()
    assert "v1" in page and "dropzone" in page
    page = client.get(f"/datasets/versions/{version.pk}/").content.decode()
    assert "身份证" in page and "alpaca" in page
