"""Sharing objects with users and teams at a level (view < use < change < manage, + view_raw),
through `{resource}/{id}/permissions/` and the share dialog. Every grant and revoke is audited."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import roles
from accounts.models import Team
from accounts.sharing import POLICIES, shares_of
from audit.models import AuditEvent
from datasets_app.models import Dataset
from tests.accounts.conftest import SECRET, permissions_url, share
from tests.conftest import api_as

pytestmark = pytest.mark.django_db


def submit(user, model, version_id: int, **params):
    """A small training job through the API (the on_commit enqueue never runs in these tests)."""
    knobs = {"max_seq_length": 64, "per_device_train_batch_size": 2, "precision": "fp32"}
    return api_as(user).post(
        "/api/v1/jobs/",
        {
            "kind": "training",
            "base_model": model.pk,
            "dataset_version": version_id,
            "params": {**knobs, **params},
        },
        format="json",
    )


def preview(user, version):
    return api_as(user).get(f"/api/v1/dataset-versions/{version.pk}/preview/")


def download(user, version):
    return api_as(user).get(f"/api/v1/dataset-versions/{version.pk}/download/")


# -- levels -----------------------------------------------------------------------------------
def test_view_level_sees_the_dataset_with_masked_values(owner, colleague, dataset, version):
    assert api_as(colleague).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404

    response = share(owner, "dataset", dataset, user=colleague.username, level="view")

    assert response.status_code == 200, response.content
    assert response.json()["level"] == "view" and response.json()["view_raw"] is False
    assert api_as(colleague).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 200
    body = preview(colleague, version).json()
    assert body["raw"] is False and body["masked_columns"] == ["input"]
    assert SECRET not in str(body)
    meta = api_as(colleague).get(f"/api/v1/dataset-versions/{version.pk}/").json()
    assert meta["report_samples"] is None
    assert download(colleague, version).status_code == 403
    assert (
        api_as(colleague)
        .patch(f"/api/v1/datasets/{dataset.pk}/", {"name": "x"}, format="json")
        .status_code
        == 403
    )


def test_view_raw_toggle_shows_raw_values(owner, colleague, dataset, version):
    share(owner, "dataset", dataset, user=colleague.username, level="view", view_raw=True)

    body = preview(colleague, version).json()
    assert body["raw"] is True and SECRET in str(body)
    assert download(colleague, version).status_code == 200


def test_use_level_trains_without_seeing_raw_rows(owner, colleague, dataset, version, demo_model):
    assert submit(colleague, demo_model, version.pk).status_code == 400  # invisible
    share(owner, "dataset", dataset, user=colleague.username, level="view")
    assert submit(colleague, demo_model, version.pk).status_code == 403  # view is not use

    share(owner, "dataset", dataset, user=colleague.username, level="use")

    assert submit(colleague, demo_model, version.pk, max_steps=1).status_code == 201
    assert download(colleague, version).status_code == 403
    body = preview(colleague, version).json()
    assert body["raw"] is False and SECRET not in str(body)
    # The training page offers the dataset too (restrict(user, "use")).
    page = _ui(colleague).get("/jobs/new/").content.decode()
    assert dataset.name in page


def test_change_level_edits_but_cannot_delete_or_share(owner, colleague, dataset):
    share(owner, "dataset", dataset, user=colleague.username, level="change")
    client = api_as(colleague)

    assert (
        client.patch(
            f"/api/v1/datasets/{dataset.pk}/", {"description": "edited"}, format="json"
        ).status_code
        == 200
    )
    assert client.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 403
    assert client.get(permissions_url("dataset", dataset)).status_code == 403


def test_manage_level_shares_and_deletes(owner, colleague, make_user, dataset):
    third = make_user("third", roles.DATA_SCIENTIST)
    share(owner, "dataset", dataset, user=colleague.username, level="manage")

    listed = api_as(colleague).get(permissions_url("dataset", dataset))
    granted = share(colleague, "dataset", dataset, user=third.username, level="use")

    assert listed.status_code == 200
    assert {s["name"]: s["level"] for s in listed.json()} == {
        "owner": "manage",
        "colleague": "manage",
    }
    assert listed.json()[0]["owner"] is True
    assert granted.status_code == 200
    assert list(Dataset.objects.restrict(third, "use")) == [dataset]
    assert api_as(colleague).delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 204


def test_a_lower_level_replaces_a_higher_one(owner, colleague, dataset):
    share(owner, "dataset", dataset, user=colleague.username, level="manage", view_raw=True)
    share(owner, "dataset", dataset, user=colleague.username, level="view")

    assert list(Dataset.objects.restrict(colleague, "view")) == [dataset]
    for action in ("use", "change", "manage", "delete", "view_raw"):
        assert list(Dataset.objects.restrict(colleague, action)) == [], action


def test_revoke_removes_access(owner, colleague, dataset):
    share(owner, "dataset", dataset, user=colleague.username, level="change")

    response = api_as(owner).delete(f"{permissions_url('dataset', dataset)}?user=colleague")

    assert response.status_code == 204
    assert api_as(colleague).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    again = api_as(owner).delete(f"{permissions_url('dataset', dataset)}?user=colleague")
    assert again.status_code == 400 and "user" in again.json()["fields"]


# -- teams ------------------------------------------------------------------------------------
def test_team_share_reaches_members_and_stops_when_they_leave(
    owner, colleague, admin_user, dataset
):
    admin = api_as(admin_user)
    created = admin.post("/api/v1/teams/", {"name": "心内科", "members": ["colleague"]})
    assert created.status_code == 201, created.content
    team_id = created.json()["id"]

    response = share(owner, "dataset", dataset, team="心内科", level="use")

    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "team"
    assert api_as(colleague).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 200
    assert list(Dataset.objects.restrict(colleague, "use")) == [dataset]

    removed = admin.delete(f"/api/v1/teams/{team_id}/members/?user=colleague")

    assert removed.status_code == 200 and removed.json()["members"] == []
    assert api_as(colleague).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    assert [s.name for s in shares_of(obj=dataset)] == ["owner", "心内科"]


def test_revoking_a_team_share(owner, colleague, admin_user, dataset):
    api_as(admin_user).post("/api/v1/teams/", {"name": "radiology", "members": ["colleague"]})
    share(owner, "dataset", dataset, team="radiology", level="view")

    response = api_as(owner).delete(permissions_url("dataset", dataset), {"team": "radiology"})

    assert response.status_code == 204
    assert not Dataset.objects.restrict(colleague, "view").exists()


# -- escalation and other refusals ------------------------------------------------------------
def test_a_manager_without_view_raw_cannot_grant_it(owner, colleague, make_user, dataset):
    third = make_user("third", roles.DATA_SCIENTIST)
    share(owner, "dataset", dataset, user=colleague.username, level="manage")

    response = share(
        colleague, "dataset", dataset, user=third.username, level="view", view_raw=True
    )

    assert response.status_code == 403
    assert not Dataset.objects.restrict(third, "view").exists()
    event = AuditEvent.objects.get(action="permission.grant", outcome="denied")
    assert event.actor_username == "colleague"
    assert event.details["reason"] == "exceeds own access"
    assert event.details["missing"] == ["view_raw"]


def test_a_user_level_share_cannot_be_passed_on(owner, colleague, make_user, dataset):
    third = make_user("third", roles.DATA_SCIENTIST)
    share(owner, "dataset", dataset, user=colleague.username, level="change", view_raw=True)

    response = share(colleague, "dataset", dataset, user=third.username, level="view")

    assert response.status_code == 403
    assert AuditEvent.objects.filter(
        action="permission.grant", outcome="denied", actor_username="colleague"
    ).exists()
    assert not Dataset.objects.restrict(third, "view").exists()


def test_owner_access_and_your_own_cannot_be_changed(owner, colleague, dataset):
    share(owner, "dataset", dataset, user=colleague.username, level="manage")

    on_owner = share(colleague, "dataset", dataset, user="owner", level="view")
    on_self = share(colleague, "dataset", dataset, user="colleague", level="view")
    revoke_owner = api_as(colleague).delete(f"{permissions_url('dataset', dataset)}?user=owner")

    assert on_owner.status_code == on_self.status_code == revoke_owner.status_code == 400
    assert list(Dataset.objects.restrict(owner, "manage")) == [dataset]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"user": "nobody", "level": "view"}, "user"),
        ({"team": "nope", "level": "view"}, "team"),
        ({"user": "colleague", "level": "owner"}, "level"),
        ({"level": "view"}, "non_field_errors"),
        ({"user": "colleague", "team": "x", "level": "view"}, "non_field_errors"),
    ],
)
def test_bad_input_answers_field_errors(owner, colleague, dataset, payload, field):
    response = share(owner, "dataset", dataset, **payload)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]


def test_jobs_have_no_use_level_and_no_raw_values(owner, colleague, job):
    assert share(owner, "job", job, user="colleague", level="use").status_code == 400
    raw = share(owner, "job", job, user="colleague", level="view", view_raw=True)
    assert raw.status_code == 400 and "view_raw" in raw.json()["fields"]


# -- jobs and model versions ------------------------------------------------------------------
def test_job_levels(owner, colleague, job):
    client = api_as(colleague)
    share(owner, "job", job, user="colleague", level="view")
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403

    share(owner, "job", job, user="colleague", level="change")
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 202
    assert client.get(permissions_url("job", job)).status_code == 403

    share(owner, "job", job, user="colleague", level="manage")
    assert client.get(permissions_url("job", job)).status_code == 200


def test_model_version_download_needs_use(owner, colleague, model_version):
    url = f"/api/v1/model-versions/{model_version.pk}/download/?file=missing.bin"
    share(owner, "model_version", model_version, user="colleague", level="view")
    assert api_as(colleague).get(f"/api/v1/model-versions/{model_version.pk}/").status_code == 200
    assert api_as(colleague).get(url).status_code == 403

    share(owner, "model_version", model_version, user="colleague", level="use")

    assert api_as(colleague).get(url).status_code == 404  # allowed; the file does not exist
    assert api_as(owner).get(url).status_code == 404


def test_auditor_sees_model_versions_but_cannot_download_weights(make_user, model_version):
    auditor = make_user("auditor", roles.AUDITOR)
    url = f"/api/v1/model-versions/{model_version.pk}/download/?file=x"
    assert api_as(auditor).get(f"/api/v1/model-versions/{model_version.pk}/").status_code == 200
    assert api_as(auditor).get(url).status_code == 403


# -- the 404/403 matrix of permissions endpoints ----------------------------------------------
ACTORS = ("anonymous", "stranger", "viewer", "manager", "owner", "auditor", "admin")
#                anon  stranger viewer manager owner auditor admin
EXPECTED = {
    "get": (401, 404, 403, 200, 200, 403, 200),
    "post": (401, 404, 403, 200, 200, 403, 200),
    "delete": (401, 404, 403, 204, 204, 403, 204),
}


@pytest.fixture
def actors(owner, make_user):
    return {
        "anonymous": None,
        "stranger": make_user("stranger", roles.DATA_SCIENTIST),
        "viewer": make_user("viewer", roles.DATA_SCIENTIST),
        "manager": make_user("manager", roles.DATA_SCIENTIST),
        "owner": owner,
        "auditor": make_user("auditor", roles.AUDITOR),
        "admin": make_user("boss", roles.ADMIN),
    }


@pytest.mark.parametrize("kind", ["dataset", "job", "model_version"])
@pytest.mark.parametrize("method", list(EXPECTED))
@pytest.mark.parametrize("actor", ACTORS)
def test_permissions_endpoint_matrix(request, actors, kind, method, actor):
    obj = request.getfixturevalue(kind)
    from accounts.sharing import share_grant

    owner = actors["owner"]
    share_grant(actor=owner, obj=obj, user=actors["viewer"], level="view")
    share_grant(actor=owner, obj=obj, user=actors["manager"], level="manage")
    target = request.getfixturevalue("colleague")
    share_grant(actor=owner, obj=obj, user=target, level="view")
    client = api_as(actors[actor]) if actors[actor] else api_as_anonymous()
    url = permissions_url(kind, obj)
    if method == "get":
        response = client.get(url)
    elif method == "post":
        response = client.post(url, {"user": "colleague", "level": "change"}, format="json")
    else:
        response = client.delete(f"{url}?user=colleague")

    expected = EXPECTED[method][ACTORS.index(actor)]
    assert response.status_code == expected, response.content[:300]
    model_label = obj._meta.label_lower
    if expected == 404:
        assert AuditEvent.objects.filter(
            outcome="denied", object_type=model_label, object_id=str(obj.pk)
        ).exists()
    if expected == 403:
        assert AuditEvent.objects.filter(
            outcome="denied", object_type=model_label, actor_username=actors[actor].username
        ).exists()


def api_as_anonymous():
    from rest_framework.test import APIClient

    return APIClient()


def test_every_shareable_model_has_the_endpoint():
    assert set(POLICIES) == {"datasets_app.dataset", "jobs.job", "jobs.modelversion"}


# -- audit ------------------------------------------------------------------------------------
def test_grant_and_revoke_are_audited_with_levels_and_request_id(owner, colleague, dataset):
    client = api_as(owner)
    url = permissions_url("dataset", dataset)
    client.post(
        url, {"user": "colleague", "level": "view"}, format="json", HTTP_X_REQUEST_ID="share-0001"
    )
    client.post(
        url,
        {"user": "colleague", "level": "change", "view_raw": True},
        format="json",
        HTTP_X_REQUEST_ID="share-0002",
    )
    client.delete(f"{url}?user=colleague", HTTP_X_REQUEST_ID="share-0003")

    events = list(AuditEvent.objects.filter(action__startswith="permission.").order_by("pk"))
    assert [(e.action, e.request_id) for e in events] == [
        ("permission.grant", "share-0001"),
        ("permission.grant", "share-0002"),
        ("permission.revoke", "share-0003"),
    ]
    assert all(e.outcome == "allowed" and e.actor == owner for e in events)
    assert all(e.object_type == "datasets_app.dataset" for e in events)
    assert all(e.object_id == str(dataset.pk) for e in events)
    first, second, third = (e.details for e in events)
    assert first["before"] == {"level": None, "view_raw": False}
    assert first["after"] == {"level": "view", "view_raw": False}
    assert second["before"] == {"level": "view", "view_raw": False}
    assert second["after"] == {"level": "change", "view_raw": True}
    assert third["before"] == {"level": "change", "view_raw": True}
    assert third["after"] == {"level": None, "view_raw": False}
    assert first["target_type"] == "user" and first["target"] == "colleague"


def test_team_grant_is_audited(owner, dataset):
    from django.contrib.auth.models import Group

    Team.objects.create(group=Group.objects.create(name="icu"))
    share(owner, "dataset", dataset, team="icu", level="use")
    event = AuditEvent.objects.get(action="permission.grant")
    assert event.details["target_type"] == "team" and event.details["target"] == "icu"


# -- the share dialog (UI) --------------------------------------------------------------------
def _ui(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("kind", "page"),
    [
        ("dataset", "/datasets/{pk}/"),
        ("job", "/jobs/{pk}/"),
        ("model_version", "/models/versions/{pk}/"),
    ],
)
def test_share_dialog_only_for_those_who_may_share(request, owner, colleague, kind, page):
    obj = request.getfixturevalue(kind)
    share(owner, kind, obj, user="colleague", level="view")
    url = page.format(pk=obj.pk)

    owners_page = _ui(owner).get(url).content.decode()
    colleagues_page = _ui(colleague).get(url)

    assert 'id="share-dialog"' in owners_page
    assert "colleague" in owners_page  # listed with a revoke button
    assert colleagues_page.status_code == 200
    assert 'id="share-dialog"' not in colleagues_page.content.decode()


def test_share_dialog_grants_and_revokes(owner, colleague, dataset):
    client = _ui(owner)
    page = f"/datasets/{dataset.pk}/"

    granted = client.post(
        f"/account/share/dataset/{dataset.pk}/",
        {"target": "user", "name": "colleague", "level": "use", "next": page},
    )

    assert granted.status_code == 302 and granted["Location"] == page
    assert list(Dataset.objects.restrict(colleague, "use")) == [dataset]
    revoked = client.post(
        f"/account/share/dataset/{dataset.pk}/revoke/",
        {"target": "user", "name": "colleague", "next": "https://evil.example/"},
    )
    assert revoked.status_code == 302 and revoked["Location"] == page  # no open redirect
    assert not Dataset.objects.restrict(colleague, "view").exists()
    assert AuditEvent.objects.filter(action="permission.revoke").count() == 1


def test_share_dialog_needs_csrf(owner, colleague, dataset):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(
        f"/account/share/dataset/{dataset.pk}/", {"target": "user", "name": "colleague"}
    )
    assert response.status_code == 403
    assert not Dataset.objects.restrict(colleague, "view").exists()


def test_share_dialog_post_refuses_invisible_and_unshareable(owner, colleague, dataset):
    invisible = _ui(colleague).post(
        f"/account/share/dataset/{dataset.pk}/",
        {"target": "user", "name": "colleague", "level": "manage"},
    )
    share(owner, "dataset", dataset, user="colleague", level="view")
    forbidden = _ui(colleague).post(
        f"/account/share/dataset/{dataset.pk}/",
        {"target": "user", "name": "colleague", "level": "manage"},
    )
    assert invisible.status_code == 404
    assert forbidden.status_code == 403
    assert list(Dataset.objects.restrict(colleague, "manage")) == []
