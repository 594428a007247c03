"""The hash chain: appends link up, every kind of tampering through raw SQL is reported as the
first broken link by audit_verify(), `manage.py audit_verify` and `audit-events/verify/`."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.test import override_settings

from audit import chain, context
from audit.models import AuditChainHead, AuditEvent
from audit.services import audit_verify, record
from tests.audit.conftest import (
    close_gap,
    event_at,
    insert_forged,
    shift_up,
    sql,
    swap_positions,
    verify_by_api,
    verify_by_command,
)
from tests.conftest import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(scientist):
    """Six events (positions 1..6), Chinese text and JSON details included."""
    for i in range(6):
        record(
            action="datasets_app.dataset.change",
            actor=scientist,
            object_type="datasets_app.dataset",
            object_id=i,
            object_repr=f"患者数据 {i}",
            details={"before": {"name": f"旧{i}"}, "after": {"name": f"新{i}"}, "rate": 0.5},
        )
    assert list(AuditEvent.objects.order_by("position").values_list("position", flat=True)) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def assert_broken(auditor, position: int, reason: str, event_id: int | None = None) -> None:
    """The same first broken link from all three ways of verifying."""
    result = audit_verify()
    assert not result.ok
    assert (result.broken.position, result.broken.reason) == (position, reason), result.broken
    if event_id is not None:
        assert result.broken.event_id == event_id

    code, out = verify_by_command()
    assert code == 1
    assert f"BROKEN at position {position}" in out and reason in out, out

    body = verify_by_api(auditor)
    assert body["ok"] is False
    assert (body["broken"]["position"], body["broken"]["reason"]) == (position, reason)


# -- appending --------------------------------------------------------------------------------
def test_each_event_links_to_the_one_before(trail):
    events = list(AuditEvent.objects.order_by("position"))
    assert events[0].prev_hash == chain.GENESIS
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    head = AuditChainHead.objects.get()
    assert (head.position, head.hash) == (6, events[-1].hash)


def test_the_link_is_keyed_not_a_plain_hash(trail):
    event = event_at(3)
    fields = chain.event_fields(event)
    message = b"hearth-audit-v1\n" + event.prev_hash.encode() + b"\n" + chain.canonical(fields)
    assert event.hash == hmac.new(chain.audit_key(), message, hashlib.sha256).hexdigest()
    assert event.hash != hashlib.sha256(message).hexdigest()
    with override_settings(HEARTH_AUDIT_KEY="another-key-of-at-least-32-characters!!"):
        assert not audit_verify().ok  # a different key does not vouch for these events


def test_canonical_form_is_sorted_utc_json(trail):
    text = chain.canonical(chain.event_fields(event_at(1))).decode()
    assert text.startswith('{"action":"datasets_app.dataset.change","actor_username":"sci"')
    assert '"created_at":"' in text and "+00:00" in text
    assert "患者数据" in text  # UTF-8, not \\u escapes


def test_an_intact_chain_verifies_everywhere(trail, auditor):
    result = audit_verify()
    assert result.ok and result.broken is None
    assert result.checked == 6 and result.head_position == 6

    code, out = verify_by_command()
    assert code == 0 and "OK" in out

    body = verify_by_api(auditor)
    assert body["ok"] is True and body["checked"] >= 6


def test_a_rolled_back_append_leaves_no_event_and_no_gap(trail):
    with pytest.raises(RuntimeError), transaction.atomic():
        record(action="datasets_app.dataset.delete")
        raise RuntimeError("the change fails")

    assert not AuditEvent.objects.filter(action="datasets_app.dataset.delete").exists()
    assert AuditChainHead.objects.get().position == 6
    assert record(action="after.rollback").position == 7
    assert audit_verify().ok


def test_a_lost_head_row_restarts_from_the_newest_event(trail):
    AuditChainHead.objects.all().delete()
    event = record(action="after.head.loss")
    assert event.position == 7 and event.prev_hash == event_at(6).hash
    assert audit_verify().ok


def test_ipv6_addresses_and_float_details_verify_after_the_round_trip(trail):
    token = context.activate(context.RequestContext(request_id="r" * 12, ip="2001:0DB8:0:0::0001"))
    try:
        event = record(action="ipv6.direct", details={"big": 1e20, "one": 1.0, "half": 0.5})
    finally:
        context.deactivate(token)
    assert AuditEvent.objects.get(pk=event.pk).ip == "2001:db8::1"
    assert audit_verify().ok


def test_no_key_no_append(trail):
    with (
        override_settings(HEARTH_AUDIT_KEY="", HEARTH_AUDIT_KEY_FILE=""),
        pytest.raises(ImproperlyConfigured),
    ):
        record(action="without.key")
    with override_settings(HEARTH_AUDIT_KEY="too-short"), pytest.raises(ImproperlyConfigured):
        record(action="short.key")
    assert not AuditEvent.objects.filter(action__in=["without.key", "short.key"]).exists()


def test_the_key_can_come_from_a_file(tmp_path, scientist):
    key_file = tmp_path / "audit.key"
    key_file.write_text("k" * 40 + "\n")
    with override_settings(HEARTH_AUDIT_KEY="", HEARTH_AUDIT_KEY_FILE=str(key_file)):
        record(action="with.key.file")
        assert chain.audit_key() == b"k" * 40
        assert audit_verify().ok


# -- tampering --------------------------------------------------------------------------------
def test_an_updated_event_is_reported_as_altered(trail, auditor):
    target = event_at(3)
    sql("UPDATE {t} SET actor_username = %s WHERE id = %s", ["someone-else", target.pk])
    assert_broken(auditor, 3, "altered", target.pk)


def test_an_update_with_a_recomputed_plain_hash_is_still_altered(trail, auditor):
    target = event_at(4)
    forged = hashlib.sha256(b"whatever the attacker computes").hexdigest()
    sql(
        "UPDATE {t} SET details = %s, hash = %s WHERE id = %s",
        ['{"before": {}, "after": {}}', forged, target.pk],
    )
    sql("UPDATE {t} SET prev_hash = %s WHERE position = 5", [forged])
    assert_broken(auditor, 4, "altered", target.pk)


def test_a_changed_time_is_reported_as_altered(trail, auditor):
    target = event_at(2)
    sql("UPDATE {t} SET created_at = %s WHERE id = %s", [event_at(5).created_at, target.pk])
    assert_broken(auditor, 2, "altered", target.pk)


def test_a_deleted_event_is_reported_as_missing(trail, auditor):
    sql("DELETE FROM {t} WHERE position = 4")
    assert_broken(auditor, 4, "missing", event_at(5).pk)


def test_a_deletion_with_the_positions_closed_up_is_still_missing(trail, auditor):
    sql("DELETE FROM {t} WHERE position = 4")
    close_gap(4)
    assert AuditEvent.objects.filter(position=4).exists()
    assert_broken(auditor, 4, "missing")


def test_deleting_the_newest_events_is_reported_as_missing(trail, auditor):
    sql("DELETE FROM {t} WHERE position >= 5")
    assert_broken(auditor, 5, "missing")


def test_an_event_inserted_in_the_middle_is_reported_as_inserted(trail, auditor):
    shift_up(4)
    forged = insert_forged(4, prev_hash=event_at(3).hash)
    assert_broken(auditor, 4, "inserted", forged)


def test_an_event_appended_behind_the_chains_back_is_reported_as_inserted(trail, auditor):
    forged = insert_forged(7, prev_hash=event_at(6).hash)
    assert_broken(auditor, 7, "inserted", forged)


def test_swapped_events_are_reported_as_out_of_order(trail, auditor):
    moved = event_at(4)
    swap_positions(3, 4)
    assert_broken(auditor, 3, "out of order", moved.pk)


def test_a_copied_event_is_reported_as_out_of_order(trail, auditor):
    """A genuine event replayed at another position: its link verifies, its place does not."""
    shift_up(6)
    original = event_at(2)
    sql(
        "INSERT INTO {t} (created_at, actor_username, ip, user_agent, request_id, action, "
        "object_type, object_id, object_repr, outcome, details, position, prev_hash, hash) "
        "SELECT created_at, actor_username, ip, user_agent, request_id, action, object_type, "
        "object_id, object_repr, outcome, details, 6, prev_hash, hash FROM {t} WHERE id = %s",
        [original.pk],
    )
    assert_broken(auditor, 6, "out of order")


def test_a_changed_chain_head_is_reported(trail, auditor):
    AuditChainHead.objects.update(hash="0" * 64)
    assert_broken(auditor, 6, "altered")


def test_the_model_still_refuses_updates_and_deletes(trail):
    from audit.models import AppendOnlyError

    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(position=1).update(action="x")
    with pytest.raises(AppendOnlyError):
        event_at(1).delete()


# -- who may verify ---------------------------------------------------------------------------
def test_verify_is_refused_to_a_data_scientist_and_the_refusal_recorded(trail, scientist):
    response = api_as(scientist).get("/api/v1/audit-events/verify/")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(
        action="audit.auditevent.verify", outcome="denied", actor_username="sci"
    ).exists()


def test_verify_needs_authentication(api):
    assert api.get("/api/v1/audit-events/verify/").status_code == 401


def test_each_verification_is_itself_recorded(trail, auditor):
    verify_by_api(auditor)
    event = AuditEvent.objects.get(action="audit.verify")
    assert event.actor_username == "audrey"
    assert event.details["ok"] is True


def test_a_failed_verification_is_recorded_as_an_error(trail, auditor):
    sql("DELETE FROM {t} WHERE position = 2")
    verify_by_api(auditor)
    event = AuditEvent.objects.get(action="audit.verify")
    assert event.outcome == "error"
    assert event.details["broken"]["position"] == 2


def test_the_audit_page_verifies_for_an_auditor(client, trail, auditor):
    client.force_login(auditor)
    assert client.get("/audit/verify/").status_code == 200
    response = client.post("/audit/verify/")
    assert response.status_code == 200
    assert response.context["result"].ok
    sql("UPDATE {t} SET action = 'x' WHERE position = 2")
    response = client.post("/audit/verify/")
    assert response.context["result"].broken.position == 2
    assert "First broken link at position 2" in response.content.decode()


def test_the_audit_verify_page_is_forbidden_to_a_data_scientist(client, scientist):
    client.force_login(scientist)
    assert client.get("/audit/verify/").status_code == 403
    assert client.post("/audit/verify/").status_code == 403


# -- concurrent writers -----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_chain():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite has a single writer anyway")
    threads, per_thread = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    record(action="concurrent.write", object_id=f"{n}-{i}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert not errors, errors
    positions = list(AuditEvent.objects.order_by("position").values_list("position", flat=True))
    assert positions == list(range(1, threads * per_thread + 1))
    result = audit_verify()
    assert result.ok, result.broken
    assert result.checked == threads * per_thread


def test_a_row_planted_beyond_the_head_does_not_block_appends(trail, auditor):
    forged = insert_forged(7, prev_hash=event_at(6).hash)
    event = record(action="still.works")
    assert event.position == 8 and event.prev_hash == event_at(6).hash
    assert_broken(auditor, 7, "inserted", forged)
