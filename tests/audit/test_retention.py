"""Retention: old events move to an encrypted archive with a keyed checkpoint, are deleted, and
both what remains and the archive still verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent
from audit.retention import ArchiveRefused, archive_dir, verify_archive
from audit.services import audit_archive_expired, audit_verify, record
from datasets_app.crypto import MAGIC, keystore_from_settings, open_decrypted
from tests.audit.conftest import sql, verify_by_api, verify_by_command
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def archives(tmp_path):
    with override_settings(HEARTH_AUDIT_ARCHIVE_DIR=tmp_path / "audit-archive"):
        yield tmp_path / "audit-archive"


def record_at(monkeypatch, when, **kwargs) -> AuditEvent:
    with monkeypatch.context() as patch:
        patch.setattr("audit.services.timezone.now", lambda: when)
        return record(**kwargs)


@pytest.fixture
def aged_trail(monkeypatch, scientist):
    """Positions 1-4 are 400 days old, 5-6 are 10 days old."""
    now = timezone.now()
    for i in range(4):
        record_at(
            monkeypatch,
            now - 400 * DAY + i * timedelta(seconds=1),
            action="datasets_app.version.download",
            actor=scientist,
            object_type="datasets_app.datasetversion",
            object_id=i,
            object_repr=f"病历 v{i}",
            details={"sha256": "ab" * 32},
        )
    for i in range(2):
        record_at(monkeypatch, now - 10 * DAY, action="jobs.job.submit", object_id=i)
    return now


def test_old_events_are_archived_checkpointed_and_deleted(aged_trail, archives, auditor):
    checkpoints = audit_archive_expired(now=aged_trail)

    assert len(checkpoints) == 1
    checkpoint = checkpoints[0]
    assert (checkpoint.first_position, checkpoint.last_position, checkpoint.count) == (1, 4, 4)
    assert not AuditEvent.objects.filter(position__lte=4).exists()
    remaining = list(AuditEvent.objects.order_by("position").values_list("position", "action"))
    assert remaining == [(5, "jobs.job.submit"), (6, "jobs.job.submit"), (7, "audit.archive")]
    archived = AuditEvent.objects.get(action="audit.archive")
    assert archived.details["count"] == 4 and archived.object_id == str(checkpoint.pk)

    result = audit_verify(archives=True)
    assert result.ok, result
    assert (result.start_position, result.checked) == (5, 3)
    assert [a.ok for a in result.archives] == [True]
    code, out = verify_by_command("--archives")
    assert code == 0, out
    assert f"archive {checkpoint.archive_name}" in out and "ok" in out
    assert verify_by_api(auditor, "?archives=1")["archives"][0]["ok"] is True


def test_the_archive_is_encrypted_private_and_complete(aged_trail, archives):
    [checkpoint] = audit_archive_expired(now=aged_trail)
    path = archives / checkpoint.archive_name

    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    assert "病历".encode() not in raw and b"download" not in raw
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(archives.stat().st_mode & 0o777) == "0o700"
    assert [p.name for p in archives.iterdir()] == [checkpoint.archive_name]  # no partials

    with open_decrypted(path, keystore_from_settings()) as reader:
        lines = reader.read().decode().splitlines()
    header, *events = (json.loads(line) for line in lines)
    assert header["format"] == "hearth-audit-archive" and header["first_position"] == 1
    assert [e["position"] for e in events] == [1, 2, 3, 4]
    assert events[0]["object_repr"] == "病历 v0"
    assert events[-1]["hash"] == checkpoint.last_hash
    assert events[0]["prev_hash"] == "0" * 64


def test_nothing_to_archive_within_retention(aged_trail):
    assert audit_archive_expired(now=aged_trail - 100 * DAY) == []
    assert AuditEvent.objects.count() == 6
    assert not AuditCheckpoint.objects.exists()


def test_archives_are_cut_in_batches_and_chain_on(aged_trail, archives):
    checkpoints = audit_archive_expired(now=aged_trail, batch_size=3)

    assert [(c.first_position, c.last_position) for c in checkpoints] == [(1, 3), (4, 4)]
    assert checkpoints[1].first_prev_hash == checkpoints[0].last_hash
    result = audit_verify(archives=True)
    assert result.ok and len(result.archives) == 2


def test_archiving_twice_continues_from_the_checkpoint(aged_trail, monkeypatch):
    audit_archive_expired(now=aged_trail)
    later = aged_trail + 400 * DAY  # now positions 5-7 are past retention too
    record_at(monkeypatch, later, action="recent")
    [second] = audit_archive_expired(now=later)
    assert (second.first_position, second.last_position) == (5, 7)
    assert audit_verify(archives=True).ok


def test_everything_past_retention_is_archived_and_the_chain_goes_on(aged_trail):
    audit_archive_expired(now=aged_trail + 400 * DAY)
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["audit.archive"]
    assert record(action="after.archive").position == 8
    assert audit_verify(archives=True).ok


def test_a_broken_chain_is_not_archived(aged_trail, archives):
    sql("UPDATE {t} SET action = 'rewritten' WHERE position = 2")

    with pytest.raises(ArchiveRefused):
        audit_archive_expired(now=aged_trail)

    assert AuditEvent.objects.count() == 6  # the evidence stays
    assert not AuditCheckpoint.objects.exists()
    assert not archives.exists() or not list(archives.iterdir())


def test_a_tampered_archive_file_fails_verification(aged_trail, archives):
    [checkpoint] = audit_archive_expired(now=aged_trail)
    path = archives / checkpoint.archive_name
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))

    result = audit_verify(archives=True)
    assert not result.ok and result.broken is None  # the database chain is fine
    assert not result.archives[0].ok
    assert "cannot be read" in result.archives[0].message
    code, out = verify_by_command("--archives")
    assert code == 1 and "BROKEN" in out


def test_a_missing_archive_file_fails_verification(aged_trail, archives):
    [checkpoint] = audit_archive_expired(now=aged_trail)
    (archives / checkpoint.archive_name).unlink()
    assert "missing" in verify_archive(checkpoint).message
    assert not audit_verify(archives=True).ok
    assert audit_verify().ok  # without --archives only the database is checked


def test_a_forged_checkpoint_is_reported(aged_trail):
    audit_archive_expired(now=aged_trail)
    sql(
        "UPDATE {c} SET last_position = 5 WHERE first_position = 1".replace(
            "{c}", AuditCheckpoint._meta.db_table
        )
    )
    sql("DELETE FROM {t} WHERE position = 5")  # hide an event behind the forged checkpoint
    result = audit_verify()
    assert not result.ok
    assert (result.broken.position, result.broken.reason) == (1, "altered")


def test_a_deleted_checkpoint_is_reported_as_missing_events(aged_trail):
    audit_archive_expired(now=aged_trail)
    sql("DELETE FROM {c}".replace("{c}", AuditCheckpoint._meta.db_table))
    result = audit_verify()
    assert (result.broken.position, result.broken.reason) == (1, "missing")


def test_an_event_put_back_at_an_archived_position_is_reported(aged_trail):
    from tests.audit.conftest import insert_forged

    audit_archive_expired(now=aged_trail)
    insert_forged(2, prev_hash="0" * 64)
    result = audit_verify()
    assert (result.broken.position, result.broken.reason) == (2, "inserted")


def test_the_model_refuses_to_change_checkpoints(aged_trail):
    from audit.models import AppendOnlyError

    [checkpoint] = audit_archive_expired(now=aged_trail)
    with pytest.raises(AppendOnlyError):
        checkpoint.save()
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.all().delete()


def test_the_beat_task_archives(aged_trail, monkeypatch):
    from audit.tasks import archive_expired

    monkeypatch.setattr("audit.retention.timezone.now", lambda: aged_trail)
    assert archive_expired.run() == 4


def test_the_task_is_scheduled_daily_on_the_cpu_queue():
    from config.celery import app

    entry = next(e for e in app.conf.beat_schedule.values() if "audit" in e["task"])
    assert entry["task"] == "audit.tasks.archive_expired"
    assert entry["schedule"] <= 24 * 3600
    queue = app.amqp.router.route({}, "audit.tasks.archive_expired")["queue"].name
    assert queue == "cpu"


# -- the retention setting --------------------------------------------------------------------
@pytest.mark.parametrize("days", [0, 30, 179])
def test_a_retention_below_180_days_is_refused_at_runtime(days, aged_trail):
    with override_settings(HEARTH_AUDIT_RETENTION_DAYS=days), pytest.raises(ImproperlyConfigured):
        audit_archive_expired(now=aged_trail)
    assert AuditEvent.objects.count() == 6


def _settings_with(env_overrides: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        HEARTH_DATA_DIR=str(tmp_path),
        **env_overrides,
    )
    code = "import django; django.setup(); from django.conf import settings; " + (
        "print(settings.HEARTH_AUDIT_RETENTION_DAYS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("value", "ok"), [("90", False), ("179", False), ("180", True)])
def test_the_settings_refuse_a_retention_below_180_days(tmp_path, value, ok):
    result = _settings_with({"HEARTH_AUDIT_RETENTION_DAYS": value}, tmp_path)
    if ok:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == value
    else:
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr and "at least 180" in result.stderr


def test_the_default_retention_is_a_year(tmp_path):
    result = _settings_with({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "365"


def test_archive_dir_follows_the_setting(archives):
    assert archive_dir() == archives
