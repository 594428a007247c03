"""The Admin section's pages: users, roles (compose a custom role), teams. Auditor read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts import roles
from accounts.models import ApiToken, Role, Team
from accounts.services import api_token_create
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

PAGES = ["/account/users/", "/account/roles/", "/account/roles/new/", "/account/teams/"]


def ui(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    ("role", "expected"),
    [(roles.ADMIN, 200), (roles.DATA_SCIENTIST, 403), (roles.VIEWER, 403)],
)
def test_pages_need_admin_permissions(make_user, page, role, expected):
    assert ui(make_user("someone", role)).get(page).status_code == expected


def test_pages_need_login(client):
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_auditor_reads_but_cannot_write(make_user):
    auditor = ui(make_user("auditor", roles.AUDITOR))
    target = make_user("target")
    assert auditor.get("/account/users/").status_code == 200
    assert auditor.get(f"/account/users/{target.pk}/").status_code == 200
    assert auditor.get("/account/roles/").status_code == 200
    assert auditor.get("/account/roles/new/").status_code == 403
    assert auditor.post(f"/account/users/{target.pk}/active/").status_code == 403
    assert auditor.post("/account/teams/", {"name": "x"}).status_code == 403
    assert not Team.objects.exists()
    assert target.__class__.objects.get(pk=target.pk).is_active


def test_navigation_links_the_section_for_admins_only(make_user, admin_user):
    assert "/account/users/" in ui(admin_user).get("/").content.decode()
    assert (
        "/account/users/" not in ui(make_user("ds", roles.DATA_SCIENTIST)).get("/").content.decode()
    )


def test_create_a_custom_role_by_ticking_permissions(admin_user):
    client = ui(admin_user)
    form = client.get("/account/roles/new/").content.decode()
    assert "Datasets" in form or "datasets" in form  # grouped by app (verbose name)
    assert 'value="datasets_app.view_raw_dataset"' in form

    response = client.post(
        "/account/roles/new/",
        {
            "name": "Compliance",
            "description": "reads the audit log",
            "permissions": ["audit.view_auditevent", "audit.export_auditevent"],
        },
    )

    assert response.status_code == 302
    role = Role.objects.get(group__name="Compliance")
    assert not role.builtin
    assert set(role.group.permissions.values_list("codename", flat=True)) == {
        "view_auditevent",
        "export_auditevent",
    }
    assert AuditEvent.objects.filter(action="accounts.role.create", actor=admin_user).exists()


def test_builtin_role_page_is_read_only(admin_user):
    role = Role.objects.get(group__name=roles.AUDITOR)
    client = ui(admin_user)
    page = client.get(f"/account/roles/{role.pk}/").content.decode()
    assert "disabled" in page
    response = client.post(f"/account/roles/{role.pk}/", {"name": "Hacked", "permissions": []})
    assert response.status_code == 403
    assert client.post(f"/account/roles/{role.pk}/delete/").status_code == 403
    assert Group.objects.filter(name=roles.AUDITOR).exists()


def test_teams_page_create_add_and_remove_members(admin_user, make_user):
    member = make_user("nurse")
    client = ui(admin_user)

    created = client.post("/account/teams/", {"name": "儿科", "description": ""})
    team = Team.objects.get(group__name="儿科")
    assert created.status_code == 302 and created["Location"] == f"/account/teams/{team.pk}/"
    client.post(f"/account/teams/{team.pk}/members/", {"username": "nurse"})
    assert list(team.members) == [member]
    page = client.get(f"/account/teams/{team.pk}/").content.decode()
    assert "nurse" in page
    client.post(f"/account/teams/{team.pk}/members/{member.pk}/remove/")
    assert not team.members.exists()
    unknown = client.post(f"/account/teams/{team.pk}/members/", {"username": "ghost"}, follow=True)
    assert "No such user." in unknown.content.decode()


def test_users_page_deactivates_and_revokes(admin_user, make_user):
    person = make_user("leaver", roles.DATA_SCIENTIST)
    api_token_create(user=person, name="laptop")
    client = ui(admin_user)
    page = client.get("/account/users/").content.decode()
    assert "leaver" in page and roles.DATA_SCIENTIST in page

    client.post(f"/account/users/{person.pk}/active/")

    person.refresh_from_db()
    assert not person.is_active
    assert ApiToken.objects.get(user=person).revoked_at is not None
    assert AuditEvent.objects.filter(action="accounts.user.deactivate").exists()


def test_user_page_sets_roles_and_teams(admin_user, make_user):
    person = make_user("person", roles.VIEWER)
    team = Team.objects.create(group=Group.objects.create(name="lab"))
    scientist = Role.objects.get(group__name=roles.DATA_SCIENTIST)
    client = ui(admin_user)

    response = client.post(
        f"/account/users/{person.pk}/",
        {"is_active": "on", "roles": [str(scientist.pk)], "teams": [str(team.pk)]},
    )

    assert response.status_code == 302
    assert set(person.groups.values_list("name", flat=True)) == {roles.DATA_SCIENTIST, "lab"}


def test_revoke_all_tokens_button(admin_user, make_user):
    person = make_user("person")
    api_token_create(user=person, name="a")
    response = ui(admin_user).post(f"/account/users/{person.pk}/revoke-tokens/")
    assert response.status_code == 302
    assert not ApiToken.objects.filter(user=person, revoked_at__isnull=True).exists()
