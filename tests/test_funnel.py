"""The permission funnel, as a matrix: one table of (actor × endpoint) → expected status.

Actors: anonymous, Viewer, the owner (Data Scientist), another Data Scientist, a Data Scientist
the dataset is shared with (guardian grant), Auditor, Admin. Invisible objects answer 404 and
are recorded as denials; lists never contain what the actor may not see.
"""

from __future__ import annotations

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts import roles
from audit.models import AuditEvent
from datasets_app.models import Dataset
from datasets_app.services import dataset_create

ACTORS = ("anonymous", "viewer", "owner", "other", "shared", "auditor", "admin")

# (name, client kind, method, path template, payload) ; expected status per actor
ENDPOINTS = {
    "api-list": ("api", "get", "/api/v1/datasets/", None),
    "api-retrieve": ("api", "get", "/api/v1/datasets/{id}/", None),
    "api-update": ("api", "patch", "/api/v1/datasets/{id}/", {"description": "changed"}),
    "api-delete": ("api", "delete", "/api/v1/datasets/{id}/", None),
    "api-create": ("api", "post", "/api/v1/datasets/", {"name": "new one"}),
    "ui-list": ("ui", "get", "/datasets/", None),
    "ui-detail": ("ui", "get", "/datasets/{id}/", None),
    "ui-delete": ("ui", "post", "/datasets/{id}/delete/", {}),
    "ui-create": ("ui", "get", "/datasets/new/", None),
}

#                    anonymous viewer owner other shared auditor admin
EXPECTED = {
    "api-list": (401, 200, 200, 200, 200, 200, 200),
    "api-retrieve": (401, 404, 200, 404, 200, 200, 200),
    "api-update": (401, 404, 200, 404, 403, 403, 200),
    "api-delete": (401, 404, 204, 404, 403, 403, 204),
    "api-create": (401, 403, 201, 201, 201, 403, 201),
    "ui-list": (302, 200, 200, 200, 200, 200, 200),
    "ui-detail": (302, 404, 200, 404, 200, 200, 200),
    "ui-delete": (302, 404, 302, 404, 403, 403, 302),
    "ui-create": (302, 403, 200, 200, 200, 403, 200),
}
CASES = [
    pytest.param(endpoint, actor, EXPECTED[endpoint][i], id=f"{endpoint}-{actor}")
    for endpoint in ENDPOINTS
    for i, actor in enumerate(ACTORS)
]


@pytest.fixture
def world(make_user):
    owner = make_user("owner", roles.DATA_SCIENTIST)
    dataset = dataset_create(owner=owner, name="ward-7 notes")
    shared = make_user("shared", roles.DATA_SCIENTIST)
    assign_perm("datasets_app.view_dataset", shared, dataset)
    actors = {
        "anonymous": None,
        "viewer": make_user("viewer", roles.VIEWER),
        "owner": owner,
        "other": make_user("other", roles.DATA_SCIENTIST),
        "shared": shared,
        "auditor": make_user("auditor", roles.AUDITOR),
        "admin": make_user("boss", roles.ADMIN),
    }
    return dataset, actors


def _client(kind: str, user):
    client = APIClient() if kind == "api" else Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize(("endpoint", "actor", "expected"), CASES)
def test_permission_matrix(world, endpoint, actor, expected):
    dataset, actors = world
    kind, method, path, payload = ENDPOINTS[endpoint]
    client = _client(kind, actors[actor])
    kwargs = {"format": "json"} if kind == "api" and payload is not None else {}
    response = getattr(client, method)(path.format(id=dataset.pk), payload, **kwargs)
    assert response.status_code == expected, response.content[:300]
    if expected == 404:
        assert AuditEvent.objects.filter(
            outcome="denied", object_type="datasets_app.dataset", object_id=str(dataset.pk)
        ).exists()


@pytest.mark.parametrize("actor", ["viewer", "other"])
def test_lists_hide_invisible_objects(world, actor):
    dataset, actors = world
    api_rows = _client("api", actors[actor]).get("/api/v1/datasets/").json()
    assert api_rows["count"] == 0 and api_rows["results"] == []
    page = _client("ui", actors[actor]).get("/datasets/").content.decode()
    assert dataset.name not in page


@pytest.mark.parametrize("actor", ["owner", "shared", "auditor", "admin"])
def test_lists_show_visible_objects(world, actor):
    dataset, actors = world
    rows = _client("api", actors[actor]).get("/api/v1/datasets/").json()["results"]
    assert [row["id"] for row in rows] == [dataset.pk]


def test_soft_deleted_dataset_disappears_but_stays_in_database(world):
    dataset, actors = world
    client = _client("api", actors["owner"])
    assert client.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 204
    assert client.get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    dataset.refresh_from_db()
    assert dataset.deleted_at is not None and dataset.deleted_by == actors["owner"]
    assert AuditEvent.objects.filter(action="datasets_app.dataset.delete").count() == 1


def test_update_records_before_and_after(world):
    dataset, actors = world
    _client("api", actors["owner"]).patch(
        f"/api/v1/datasets/{dataset.pk}/", {"name": "ward-8 notes"}, format="json"
    )
    event = AuditEvent.objects.get(action="datasets_app.dataset.change")
    assert event.details == {"before": {"name": "ward-7 notes"}, "after": {"name": "ward-8 notes"}}


def test_forbidden_change_is_recorded_as_denied(world):
    dataset, actors = world
    _client("api", actors["shared"]).patch(
        f"/api/v1/datasets/{dataset.pk}/", {"name": "x"}, format="json"
    )
    event = AuditEvent.objects.get(action="datasets_app.dataset.change")
    assert (event.outcome, event.actor_username) == ("denied", "shared")
    assert Dataset.objects.get(pk=dataset.pk).name == "ward-7 notes"


def test_team_share_through_group_grant(world, make_user):
    from django.contrib.auth.models import Group

    dataset, _ = world
    team = Group.objects.create(name="cardiology")
    member = make_user("member", roles.DATA_SCIENTIST)
    member.groups.add(team)
    assign_perm("datasets_app.view_dataset", team, dataset)
    assert list(Dataset.objects.restrict(member, "view")) == [dataset]
    assert list(Dataset.objects.restrict(member, "change")) == []
