"""Denials are recorded even when the transaction around them rolls back (ATOMIC_REQUESTS,
DRF's set_rollback, a service's atomic block); other events roll back with their change."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.urls import include, path
from guardian.shortcuts import assign_perm

from accounts import roles
from audit.models import AuditEvent
from audit.services import (
    audit_verify,
    close_denial_scope,
    open_denial_scope,
    record,
    record_denied,
)
from datasets_app.models import Dataset
from datasets_app.services import dataset_create
from tests.conftest import api_as


# A view that changes something, is then denied, and fails: its transaction rolls back.
@transaction.atomic
def _denied_after_a_change(request):
    record(action="test.change", actor=request.user)
    record_denied(actor=request.user, model=Dataset, action="change", reason="test")
    raise PermissionDenied


urlpatterns = [
    path("denied-after-a-change/", _denied_after_a_change),
    path("", include("config.urls")),  # the 403 page's navigation links
]


@pytest.fixture
def atomic_requests(monkeypatch):
    """ATOMIC_REQUESTS on for the default database, as a deployment might set it."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)


@pytest.fixture
def others_dataset(make_user):
    alice = make_user("alice", roles.DATA_SCIENTIST)
    return dataset_create(owner=alice, name="alice-data")


@pytest.mark.django_db
@pytest.mark.urls("tests.audit.test_denials")
def test_a_denial_in_a_failing_atomic_view_survives_its_rollback(client, scientist):
    client.force_login(scientist)

    response = client.get("/denied-after-a-change/")

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="test.change").exists()  # rolled back
    denial = AuditEvent.objects.get(action="datasets_app.dataset.change", outcome="denied")
    assert denial.actor_username == "sci"
    assert denial.request_id == response["X-Request-ID"]
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_invisible_object_under_atomic_requests_keeps_its_denial(
    atomic_requests, others_dataset, scientist
):
    response = api_as(scientist).get(f"/api/v1/datasets/{others_dataset.pk}/")

    assert response.status_code == 404
    denial = AuditEvent.objects.get(outcome="denied", object_id=str(others_dataset.pk))
    assert denial.action == "datasets_app.dataset.view"
    assert denial.details == {"reason": "not visible"}


@pytest.mark.django_db
def test_a_forbidden_change_under_atomic_requests_keeps_its_denial(
    atomic_requests, others_dataset, scientist
):
    assign_perm("datasets_app.view_dataset", scientist, others_dataset)

    response = api_as(scientist).patch(
        f"/api/v1/datasets/{others_dataset.pk}/", {"name": "mine now"}, format="json"
    )

    assert response.status_code == 403
    assert AuditEvent.objects.filter(
        action="datasets_app.dataset.change", outcome="denied", actor_username="sci"
    ).exists()
    assert not AuditEvent.objects.filter(
        action="datasets_app.dataset.change", outcome="allowed"
    ).exists()


@pytest.mark.django_db
def test_a_bad_token_under_atomic_requests_is_recorded(atomic_requests, api):
    response = api.get("/api/v1/datasets/", HTTP_AUTHORIZATION="Bearer not-a-real-token-123")
    assert response.status_code == 401
    assert AuditEvent.objects.filter(action="auth.token_failed", outcome="denied").exists()


@pytest.mark.django_db
def test_a_normal_write_that_rolls_back_leaves_no_event(scientist):
    with pytest.raises(RuntimeError), transaction.atomic():
        record(action="datasets_app.dataset.create", actor=scientist)
        raise RuntimeError
    assert not AuditEvent.objects.exists()


# -- with real commits and rollbacks (no test-wide transaction) --------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_denial_in_a_rolled_back_transaction_is_written_when_the_scope_closes(scientist):
    scope = open_denial_scope()
    try:
        with pytest.raises(PermissionDenied), transaction.atomic():
            record(action="test.change", actor=scientist)
            pending = record_denied(actor=scientist, model=Dataset, action="delete")
            assert pending.pk is None  # not written yet: the transaction may still roll back
            raise PermissionDenied
        assert not AuditEvent.objects.exists()
    finally:
        close_denial_scope(scope)

    assert list(AuditEvent.objects.values_list("action", "outcome")) == [
        ("datasets_app.dataset.delete", "denied")
    ]
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_denial_in_a_committed_transaction_is_written_once(scientist):
    scope = open_denial_scope()
    try:
        with transaction.atomic():
            record(action="test.change", actor=scientist)
            record_denied(actor=scientist, model=Dataset, action="delete")
        # Written on commit, after the change it belongs with.
        assert list(AuditEvent.objects.order_by("position").values_list("action", flat=True)) == [
            "test.change",
            "datasets_app.dataset.delete",
        ]
    finally:
        close_denial_scope(scope)
    assert AuditEvent.objects.filter(outcome="denied").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_denial_in_a_rolled_back_savepoint_of_a_committed_transaction(scientist):
    scope = open_denial_scope()
    try:
        with transaction.atomic():
            record(action="test.outer", actor=scientist)
            try:
                with transaction.atomic():
                    record_denied(actor=scientist, model=Dataset, action="delete")
                    raise PermissionDenied
            except PermissionDenied:
                pass
    finally:
        close_denial_scope(scope)
    assert AuditEvent.objects.filter(outcome="denied").count() == 1
    assert AuditEvent.objects.filter(action="test.outer").count() == 1
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_outside_any_transaction_a_denial_is_written_at_once(scientist):
    scope = open_denial_scope()
    try:
        event = record_denied(actor=scientist, model=Dataset, action="view")
        assert event.pk is not None
    finally:
        close_denial_scope(scope)
    assert AuditEvent.objects.count() == 1
