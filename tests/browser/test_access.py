"""In the browser: an admin creates a team and a custom role and shares a dataset with the team;
a member sees it masked; the auditor finds all of it in the audit log."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import roles
from datasets_app.services import dataset_create
from tests.conftest import api_as

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
PASSWORD = "correct-horse-battery-9"
SECRET_ID = "110105199003071239"


def _login(page, live_server, username):
    page.context.clear_cookies()
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_team_role_share_masked_member_and_audit_log(
    page, live_server, make_user, settings, tmp_path
):
    settings.HEARTH_STORAGE_DIR = tmp_path / "storage"
    make_user("chief", roles.ADMIN, password=PASSWORD)
    owner = make_user("registrar", roles.DATA_SCIENTIST, password=PASSWORD)
    make_user("nurse", roles.DATA_SCIENTIST, password=PASSWORD)
    make_user("audrey", roles.AUDITOR, password=PASSWORD)
    dataset = dataset_create(owner=owner, name="ward-7 discharge notes")
    rows = [{"text": f"患者张三，身份证{SECRET_ID}，今日出院。", "ward": "7"}]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    client = api_as(owner)
    version = client.post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"file": SimpleUploadedFile("notes.jsonl", body)},
        format="multipart",
    ).json()["id"]
    client.patch(
        f"/api/v1/dataset-versions/{version}/", {"sensitive_columns": ["text"]}, format="json"
    )

    # The admin: a team with the nurse in it, a custom role, and the dataset shared with the team.
    _login(page, live_server, "chief")
    page.goto(live_server.url + "/account/teams/")
    page.fill("#team-form input[name=name]", "cardiology")
    page.click("#team-form button[type=submit]")
    page.wait_for_selector("#member-form")  # the new team's page
    page.fill("#member-form input[name=username]", "nurse")
    page.click("#member-form button[type=submit]")
    page.wait_for_selector("#members tr[data-username=nurse]")

    page.goto(live_server.url + "/account/roles/new/")
    page.fill("#role-form input[name=name]", "Ward reviewer")
    page.check("#role-form input[value='jobs.view_job']")
    page.click("#role-form button[type=submit]")
    page.wait_for_selector("text=Ward reviewer")

    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    page.click("#share-dialog summary")
    page.select_option("#share-form select[name=target]", "team")
    page.fill("#share-form input[name=name]", "cardiology")
    page.select_option("#share-form select[name=level]", "use")
    page.click("#share-form button[type=submit]")
    page.wait_for_selector("#share-list tr[data-kind=team][data-name=cardiology]", state="attached")

    # The nurse sees the dataset, masked.
    _login(page, live_server, "nurse")
    page.goto(live_server.url + "/datasets/")
    page.click("text=ward-7 discharge notes")
    page.goto(f"{live_server.url}/datasets/versions/{version}/")
    html = page.content()
    assert "••••••" in html and SECRET_ID not in html

    # The auditor finds all of it.
    _login(page, live_server, "audrey")
    page.goto(live_server.url + "/audit/")
    trail = page.inner_text("main")
    for action in (
        "accounts.team.create",
        "accounts.team.member_add",
        "accounts.role.create",
        "permission.grant",
        "datasets_app.version.preview",
    ):
        assert action in trail, action
    assert "nurse" in trail and "chief" in trail
