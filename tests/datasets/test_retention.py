"""Soft delete, admin restore, and the retention purge of encrypted files."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from datasets_app.models import Dataset
from datasets_app.services import dataset_purge_expired, dataset_restore, dataset_soft_delete
from tests.conftest import api_as
from tests.datasets.conftest import ALPACA_ROWS, jsonl_bytes, upload

pytestmark = pytest.mark.django_db(transaction=True)  # purge deletes files on commit


def _stored(storage_dir):
    return [p for p in storage_dir.rglob("*.hrth")]


def test_admin_restores_a_deleted_dataset_from_the_admin_site(owner, dataset, admin_user, client):
    admin_user.is_staff = True
    admin_user.is_superuser = True
    admin_user.save()
    dataset_soft_delete(dataset=dataset, actor=owner)
    assert api_as(owner).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    client.force_login(admin_user)
    response = client.post(
        "/admin/datasets_app/dataset/", {"action": "restore", "_selected_action": [dataset.pk]}
    )
    assert response.status_code == 302
    assert api_as(owner).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 200
    assert AuditEvent.objects.filter(action="datasets_app.dataset.restore").exists()


def test_purge_removes_files_only_after_the_retention_period(owner, dataset, private_storage):
    assert upload(api_as(owner), dataset, jsonl_bytes(ALPACA_ROWS)).status_code == 201
    assert len(_stored(private_storage)) == 1
    dataset_soft_delete(dataset=dataset, actor=owner)
    assert dataset_purge_expired(retention_days=30) == 0
    assert len(_stored(private_storage)) == 1

    Dataset.objects.filter(pk=dataset.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    assert dataset_purge_expired(retention_days=30) == 1
    assert _stored(private_storage) == []
    dataset.refresh_from_db()
    assert dataset.purged_at is not None and dataset.versions.count() == 1  # lineage kept
    assert AuditEvent.objects.filter(action="datasets_app.dataset.purge").exists()
    with pytest.raises(ValidationError):
        dataset_restore(dataset=dataset, actor=owner)
