"""Admin API: users (roles, teams, deactivation), roles (custom and built-in), teams."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from accounts import roles
from accounts.models import ApiToken, Role, Team
from accounts.services import api_token_create
from audit.models import AuditEvent
from datasets_app.models import Dataset
from datasets_app.services import dataset_create
from tests.conftest import api_as

pytestmark = pytest.mark.django_db

User = get_user_model()


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


# -- built-in roles ---------------------------------------------------------------------------
def test_builtin_roles_are_marked_builtin():
    builtin = {r.name for r in Role.objects.filter(builtin=True)}
    assert builtin == {roles.ADMIN, roles.DATA_SCIENTIST, roles.AUDITOR, roles.VIEWER}


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_builtin_roles_are_immutable(admin_user, method):
    role = Role.objects.get(group__name=roles.VIEWER)
    before = set(role.group.permissions.values_list("codename", flat=True))
    payload = {"name": "Looker", "permissions": ["datasets_app.view_dataset"]}

    response = getattr(api_as(admin_user), method)(f"/api/v1/roles/{role.pk}/", payload)

    assert response.status_code == 403, response.content
    role.refresh_from_db()
    assert role.group.name == roles.VIEWER
    assert set(role.group.permissions.values_list("codename", flat=True)) == before
    assert AuditEvent.objects.filter(
        object_type="accounts.role", object_id=str(role.pk), outcome="denied"
    ).exists()


def test_roles_list_shows_builtins_read_only_flags(admin_user):
    rows = api_as(admin_user).get("/api/v1/roles/").json()["results"]
    by_name = {r["name"]: r for r in rows}
    assert by_name[roles.AUDITOR]["builtin"] is True
    assert "audit.view_auditevent" in by_name[roles.AUDITOR]["permissions"]


# -- custom roles -----------------------------------------------------------------------------
def test_custom_role_composed_via_api_grants_what_it_lists(admin_user, make_user):
    owner = make_user("owner", roles.DATA_SCIENTIST)
    dataset = dataset_create(owner=owner, name="claims 2024")
    steward = make_user("steward")
    admin = api_as(admin_user)

    created = admin.post(
        "/api/v1/roles/",
        {
            "name": "数据管理员",
            "description": "Reads every dataset",
            "permissions": ["datasets_app.view_dataset", "jobs.view_basemodel"],
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["builtin"] is False
    assigned = admin.patch(f"/api/v1/users/{steward.pk}/", {"roles": ["数据管理员"]})
    assert assigned.status_code == 200, assigned.content
    assert assigned.json()["roles"] == ["数据管理员"]

    steward = User.objects.get(pk=steward.pk)  # fresh permission cache
    listed = api_as(steward).get("/api/v1/datasets/").json()
    assert [d["id"] for d in listed["results"]] == [dataset.pk]
    assert steward.has_perm("jobs.view_basemodel")
    assert not steward.has_perm("datasets_app.change_dataset")
    assert not steward.has_perm("datasets_app.view_raw_dataset")
    patch = api_as(steward).patch(f"/api/v1/datasets/{dataset.pk}/", {"name": "x"})
    assert patch.status_code == 403
    assert AuditEvent.objects.filter(action="accounts.role.create").exists()


def test_custom_role_can_be_edited_and_deleted(admin_user, make_user):
    admin = api_as(admin_user)
    role_id = admin.post(
        "/api/v1/roles/", {"name": "Readers", "permissions": ["jobs.view_job"]}
    ).json()["id"]
    member = make_user("reader")
    admin.patch(f"/api/v1/users/{member.pk}/", {"roles": ["Readers"]})

    edited = admin.patch(f"/api/v1/roles/{role_id}/", {"permissions": ["jobs.view_modelversion"]})

    assert edited.status_code == 200, edited.content
    assert edited.json()["permissions"] == ["jobs.view_modelversion"]
    event = AuditEvent.objects.get(action="accounts.role.change")
    assert event.details["permissions_added"] == ["jobs.view_modelversion"]
    assert event.details["permissions_removed"] == ["jobs.view_job"]
    assert admin.delete(f"/api/v1/roles/{role_id}/").status_code == 204
    assert not Group.objects.filter(name="Readers").exists()
    assert not User.objects.get(pk=member.pk).has_perm("jobs.view_modelversion")


def test_permission_choices_have_labels(admin_user):
    rows = api_as(admin_user).get("/api/v1/roles/permission-choices/").json()
    codes = {r["code"]: r["label"] for r in rows}
    assert "datasets_app.view_raw_dataset" in codes
    assert "jobs.manage_job" in codes
    assert codes["datasets_app.view_dataset"]  # a human label, not the code


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "permissions": ["nope.nothing"]}, "permissions"),
        ({"name": roles.ADMIN, "permissions": []}, "name"),
        ({"name": "  ", "permissions": []}, "name"),
        ({"permissions": []}, "name"),
    ],
)
def test_role_field_errors(admin_user, payload, field):
    response = api_as(admin_user).post("/api/v1/roles/", payload)
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_a_role_cannot_hold_more_than_its_creator(make_user):
    """Someone allowed to manage groups but holding no dataset permission cannot mint one."""
    from django.contrib.auth.models import Permission

    limited = make_user("group-admin")
    limited.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="auth", codename__in=["add_group", "view_group"]
        )
    )

    response = api_as(limited).post(
        "/api/v1/roles/", {"name": "Everything", "permissions": ["datasets_app.view_dataset"]}
    )

    assert response.status_code == 403
    assert not Group.objects.filter(name="Everything").exists()
    event = AuditEvent.objects.get(object_type="accounts.role", outcome="denied")
    assert "datasets_app.view_dataset" in event.details["reason"]


def test_assigning_a_role_with_more_than_you_hold_is_refused(make_user):
    from django.contrib.auth.models import Permission

    limited = make_user("user-admin")
    limited.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="auth", codename__in=["change_user", "view_user"]
        )
    )
    target = make_user("target")

    response = api_as(limited).patch(f"/api/v1/users/{target.pk}/", {"roles": [roles.ADMIN]})

    assert response.status_code == 403
    assert not target.groups.exists()


# -- users ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "get", "patch"),
    [
        (roles.ADMIN, 200, 200),
        (roles.AUDITOR, 200, 403),
        (roles.DATA_SCIENTIST, 403, 403),
        (roles.VIEWER, 403, 403),
    ],
)
def test_users_endpoint_access(make_user, role, get, patch):
    actor = make_user("actor", role)
    target = make_user("target")
    client = api_as(actor)
    assert client.get("/api/v1/users/").status_code == get
    assert client.get(f"/api/v1/users/{target.pk}/").status_code == get
    assert client.patch(f"/api/v1/users/{target.pk}/", {"teams": []}).status_code == patch
    if get == 403:
        assert AuditEvent.objects.filter(actor_username="actor", outcome="denied").exists()


def test_anonymous_gets_401_on_admin_endpoints(api):
    for url in ("/api/v1/users/", "/api/v1/roles/", "/api/v1/teams/"):
        assert api.get(url).status_code == 401


def test_deactivating_a_user_rejects_their_token_ends_sessions_and_is_audited(
    admin_user, make_user
):
    person = make_user("leaver", roles.DATA_SCIENTIST)
    raw = api_token_create(user=person, name="ci").raw
    browser = Client()
    browser.force_login(person)
    assert bearer(raw).get("/api/v1/datasets/").status_code == 200
    assert browser.get("/datasets/").status_code == 200

    response = api_as(admin_user).patch(
        f"/api/v1/users/{person.pk}/", {"is_active": False}, HTTP_X_REQUEST_ID="deactivate-0001"
    )

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False and response.json()["active_tokens"] == 0
    assert bearer(raw).get("/api/v1/datasets/").status_code == 401
    assert browser.get("/datasets/").status_code == 302  # session ended: back to the login
    token = ApiToken.objects.get(user=person)
    assert token.revoked_at is not None
    deactivate = AuditEvent.objects.get(action="accounts.user.deactivate")
    assert deactivate.actor == admin_user and deactivate.request_id == "deactivate-0001"
    assert deactivate.details == {"tokens_revoked": 1, "sessions_ended": 1}
    change = AuditEvent.objects.get(action="accounts.user.change")
    assert change.details["before"]["is_active"] is True
    assert change.details["after"]["is_active"] is False
    assert AuditEvent.objects.filter(
        action="accounts.token.revoke", object_id=str(token.pk), actor=admin_user
    ).exists()
    # Reactivating does not bring the token back.
    api_as(admin_user).patch(f"/api/v1/users/{person.pk}/", {"is_active": True})
    assert bearer(raw).get("/api/v1/datasets/").status_code == 401


def test_revoke_tokens_action(admin_user, make_user):
    person = make_user("person")
    raws = [api_token_create(user=person, name=f"t{i}").raw for i in range(2)]

    response = api_as(admin_user).post(f"/api/v1/users/{person.pk}/revoke-tokens/")

    assert response.status_code == 200 and response.json()["active_tokens"] == 0
    assert all(bearer(raw).get("/api/v1/datasets/").status_code == 401 for raw in raws)
    assert AuditEvent.objects.filter(action="accounts.token.revoke").count() == 2


def test_admins_cannot_change_their_own_status_or_roles(admin_user):
    client = api_as(admin_user)
    response = client.patch(f"/api/v1/users/{admin_user.pk}/", {"is_active": False})
    assert response.status_code == 400
    assert "is_active" in response.json()["fields"]
    assert User.objects.get(pk=admin_user.pk).is_active


def test_only_superusers_change_superusers(admin_user):
    root = User.objects.create_superuser("root", password="x-long-enough-password")
    response = api_as(admin_user).patch(f"/api/v1/users/{root.pk}/", {"is_active": False})
    assert response.status_code == 403
    assert User.objects.get(pk=root.pk).is_active


def test_unknown_role_or_team_names_are_field_errors(admin_user, make_user):
    person = make_user("person")
    response = api_as(admin_user).patch(
        f"/api/v1/users/{person.pk}/", {"roles": ["Nope"], "teams": ["Nada"]}
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"roles", "teams"}


def test_roles_and_teams_are_distinguished(admin_user, make_user):
    person = make_user("person", roles.DATA_SCIENTIST)
    Team.objects.create(group=Group.objects.create(name="oncology"))

    body = api_as(admin_user).patch(f"/api/v1/users/{person.pk}/", {"teams": ["oncology"]}).json()

    assert body["roles"] == [roles.DATA_SCIENTIST]
    assert body["teams"] == ["oncology"]
    # A team name is not a role name, and the reverse.
    bad = api_as(admin_user).patch(f"/api/v1/users/{person.pk}/", {"roles": ["oncology"]})
    assert bad.status_code == 400


# -- teams ------------------------------------------------------------------------------------
def test_team_crud_and_members(admin_user, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    admin = api_as(admin_user)

    created = admin.post("/api/v1/teams/", {"name": "ICU", "description": "intensive care"})
    team_id = created.json()["id"]
    added = admin.post(f"/api/v1/teams/{team_id}/members/", {"user": "alice"})
    replaced = admin.patch(f"/api/v1/teams/{team_id}/", {"members": ["bob"], "name": "ICU-2"})

    assert created.status_code == 201
    assert added.json()["members"] == ["alice"]
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["members"] == ["bob"] and replaced.json()["name"] == "ICU-2"
    assert not alice.groups.exists() and bob.groups.filter(name="ICU-2").exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="accounts.team.")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [
        "accounts.team.create",
        "accounts.team.member_add",
        "accounts.team.change",
        "accounts.team.member_remove",
        "accounts.team.member_add",
    ]
    assert admin.delete(f"/api/v1/teams/{team_id}/").status_code == 204
    assert not Team.objects.exists() and not Group.objects.filter(name="ICU-2").exists()


def test_members_see_their_own_teams_only(admin_user, make_user):
    member, outsider = make_user("member"), make_user("outsider")
    admin = api_as(admin_user)
    team_id = admin.post("/api/v1/teams/", {"name": "lab", "members": ["member"]}).json()["id"]

    assert [t["name"] for t in api_as(member).get("/api/v1/teams/").json()["results"]] == ["lab"]
    assert api_as(outsider).get("/api/v1/teams/").json()["count"] == 0
    assert api_as(outsider).get(f"/api/v1/teams/{team_id}/").status_code == 404
    assert (
        api_as(member).post(f"/api/v1/teams/{team_id}/members/", {"user": "outsider"}).status_code
        == 403
    )
    assert api_as(member).post("/api/v1/teams/", {"name": "mine"}).status_code == 403


def test_deleting_a_team_drops_its_shares(admin_user, make_user):
    owner = make_user("owner", roles.DATA_SCIENTIST)
    member = make_user("member", roles.DATA_SCIENTIST)
    dataset = dataset_create(owner=owner, name="d")
    admin = api_as(admin_user)
    team_id = admin.post("/api/v1/teams/", {"name": "lab", "members": ["member"]}).json()["id"]
    api_as(owner).post(
        f"/api/v1/datasets/{dataset.pk}/permissions/", {"team": "lab", "level": "view"}
    )
    assert Dataset.objects.restrict(member, "view").exists()

    admin.delete(f"/api/v1/teams/{team_id}/")

    assert not Dataset.objects.restrict(member, "view").exists()
    event = AuditEvent.objects.get(action="accounts.team.delete")
    assert event.details["object_grants_removed"] == 1
