"""The permission matrix over every API endpoint and UI page, generated from one table.

Actors: anonymous, Viewer, the owner (Data Scientist), another Data Scientist, a member of a team
the objects are shared with ("use" on the dataset: may train, may not see raw values), Auditor,
Admin and a custom role (a compliance officer who may read the audit trail and nothing else).

`test_every_route_is_in_the_matrix` walks Django's URL resolver: a new endpoint or page fails
the suite until it has a row here. Invisible objects answer 404 and leave a denied audit event;
lists never contain what the actor may not see; raw values follow `view_raw`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.conftest import api_as
from tests.matrix_world import ACTORS, SECRET_ID, training_body

pytestmark = pytest.mark.django_db

# Routes anyone may reach, and routes outside the matrix's scope (Django's admin site has its
# own staff checks; the API root and schema only list names).
PUBLIC = {
    "login",
    "logout",
    "healthz",
    "readyz",
    "set_language",
    "schema",
    "api-docs",
}


@dataclass(frozen=True)
class Case:
    route: str  # URL name, namespaced for the UI apps
    method: str
    path: str  # formatted with the world's ids
    expected: tuple[int, ...]  # one status per actor, in ACTORS order
    payload: Any = None
    ui: bool = False

    @property
    def id(self) -> str:
        return f"{self.method}-{self.route}"


# Shorthands for the common shapes, ACTORS order:
#            anon viewer owner other team auditor admin custom
API_ALL = (401, 200, 200, 200, 200, 200, 200, 200)
API_OBJ = (401, 404, 200, 404, 200, 200, 200, 404)  # visible to owner, team, auditor, admin
UI_ALL = (302, 200, 200, 200, 200, 200, 200, 200)
UI_OBJ = (302, 404, 200, 404, 200, 200, 200, 404)

CASES = [
    # -- API ------------------------------------------------------------------------------------
    Case("api-root", "get", "/api/v1/", API_ALL),
    Case("token-list", "get", "/api/v1/tokens/", API_ALL),
    Case(
        "token-list",
        "post",
        "/api/v1/tokens/",
        (401, 201, 201, 201, 201, 201, 201, 201),
        {"name": "ci"},
    ),
    # Tokens are personal: nobody else sees them, admins revoke through users/.
    Case(
        "token-detail", "get", "/api/v1/tokens/{token}/", (401, 404, 200, 404, 404, 404, 404, 404)
    ),
    Case(
        "token-detail",
        "delete",
        "/api/v1/tokens/{token}/",
        (401, 404, 204, 404, 404, 404, 404, 404),
    ),
    Case("dataset-list", "get", "/api/v1/datasets/", API_ALL),
    Case(
        "dataset-list",
        "post",
        "/api/v1/datasets/",
        (401, 403, 201, 201, 201, 403, 201, 403),
        {"name": "new one"},
    ),
    Case("dataset-detail", "get", "/api/v1/datasets/{dataset}/", API_OBJ),
    Case(
        "dataset-detail",
        "patch",
        "/api/v1/datasets/{dataset}/",
        (401, 404, 200, 404, 403, 403, 200, 404),
        {"description": "changed"},
    ),
    Case(
        "dataset-detail",
        "delete",
        "/api/v1/datasets/{dataset}/",
        (401, 404, 204, 404, 403, 403, 204, 404),
    ),
    Case("dataset-versions", "get", "/api/v1/datasets/{dataset}/versions/", API_OBJ),
    Case(
        "dataset-versions",
        "post",
        "/api/v1/datasets/{dataset}/versions/",
        (401, 404, 201, 404, 403, 403, 201, 404),
        "upload",
    ),
    Case("dataset-version-list", "get", "/api/v1/dataset-versions/", API_ALL),
    Case("dataset-version-detail", "get", "/api/v1/dataset-versions/{version}/", API_OBJ),
    Case(
        "dataset-version-detail",
        "patch",
        "/api/v1/dataset-versions/{version}/",
        (401, 404, 200, 404, 403, 403, 200, 404),
        {"sensitive_columns": ["input", "output"]},
    ),
    Case("dataset-version-preview", "get", "/api/v1/dataset-versions/{version}/preview/", API_OBJ),
    Case(
        "dataset-version-download",
        "get",
        "/api/v1/dataset-versions/{version}/download/",
        (401, 404, 200, 404, 403, 403, 200, 404),
    ),
    Case(
        "dataset-version-desensitize",
        "post",
        "/api/v1/dataset-versions/{version}/desensitize/",
        (401, 404, 202, 404, 403, 403, 202, 404),
        {"preset": "pipl"},
    ),
    Case(
        "dataset-version-desensitize-preview",
        "post",
        "/api/v1/dataset-versions/{version}/desensitize-preview/",
        API_OBJ,
        {"preset": "pipl"},
    ),
    Case(
        "dataset-version-augment",
        "post",
        "/api/v1/dataset-versions/{version}/augment/",
        (401, 404, 202, 404, 403, 403, 202, 404),
        {"config": {"copies": 1, "seed": 1, "ops": {"swap": {"n": 1}}}},
    ),
    Case("job-list", "get", "/api/v1/jobs/", API_ALL),
    # "other" cannot see the dataset version: a field error, as for any unknown id.
    Case("job-list", "post", "/api/v1/jobs/", (401, 403, 201, 400, 201, 403, 201, 403), "training"),
    Case("job-detail", "get", "/api/v1/jobs/{job}/", API_OBJ),
    Case(
        "job-cancel", "post", "/api/v1/jobs/{job}/cancel/", (401, 404, 202, 404, 403, 403, 202, 404)
    ),
    Case(
        "job-retry", "post", "/api/v1/jobs/{job}/retry/", (401, 404, 400, 404, 403, 403, 400, 404)
    ),
    Case("job-metrics", "get", "/api/v1/jobs/{job}/metrics/", API_OBJ),
    Case("job-logs", "get", "/api/v1/jobs/{job}/logs/", API_OBJ),
    Case("base-model-list", "get", "/api/v1/base-models/", API_ALL),
    Case(
        "base-model-list",
        "post",
        "/api/v1/base-models/",
        (401, 403, 403, 403, 403, 403, 400, 403),
        {},
    ),
    Case(
        "base-model-detail",
        "get",
        "/api/v1/base-models/{base_model}/",
        (401, 200, 200, 200, 200, 200, 200, 404),
    ),
    Case("model-version-list", "get", "/api/v1/model-versions/", API_ALL),
    # Allowed actors get 400 for the empty body: the permission is checked before the payload.
    Case(
        "model-version-promote",
        "post",
        "/api/v1/model-versions/{model_version}/promote/",
        (401, 404, 400, 404, 403, 403, 400, 404),
        {},
    ),
    Case(
        "model-version-generate",
        "post",
        "/api/v1/model-versions/{model_version}/generate/",
        (401, 404, 400, 404, 403, 403, 400, 404),
        {},
    ),
    Case(
        "model-version-detect-watermark",
        "post",
        "/api/v1/model-versions/{model_version}/detect-watermark/",
        (401, 404, 400, 404, 403, 403, 400, 404),
        {},
    ),
    Case("evaluation-gate-list", "get", "/api/v1/evaluation-gates/", API_ALL),
    Case(
        "evaluation-gate-list",
        "post",
        "/api/v1/evaluation-gates/",
        (401, 403, 403, 403, 403, 403, 201, 403),
        {"name": "Cardiology", "accuracy_min": 0.9},
    ),
    Case(
        "evaluation-gate-detail",
        "get",
        "/api/v1/evaluation-gates/{gate}/",
        (401, 404, 200, 200, 200, 200, 200, 404),
    ),
    Case(
        "evaluation-gate-detail",
        "patch",
        "/api/v1/evaluation-gates/{gate}/",
        (401, 404, 403, 403, 403, 403, 200, 404),
        {"accuracy_min": 0.8},
    ),
    Case("model-version-detail", "get", "/api/v1/model-versions/{model_version}/", API_OBJ),
    Case(
        "model-version-download",
        "get",
        "/api/v1/model-versions/{model_version}/download/?file=adapter_config.json",
        (401, 404, 200, 404, 403, 403, 200, 404),
    ),
    Case("worker-list", "get", "/api/v1/workers/", API_ALL),
    Case(
        "worker-detail",
        "get",
        "/api/v1/workers/{worker}/",
        (401, 404, 200, 200, 200, 200, 200, 404),
    ),
    Case("audit-event-list", "get", "/api/v1/audit-events/", API_ALL),
    Case(
        "audit-event-detail",
        "get",
        "/api/v1/audit-events/{event}/",
        (401, 404, 404, 404, 404, 200, 200, 200),
    ),
    # -- access control and the audit trail (API and UI) --
    Case(
        "dataset-permissions",
        "get",
        "/api/v1/datasets/{dataset}/permissions/",
        (401, 404, 200, 404, 403, 403, 200, 404),
    ),
    Case(
        "dataset-permissions",
        "post",
        "/api/v1/datasets/{dataset}/permissions/",
        (401, 404, 200, 404, 403, 403, 200, 404),
        {"user": "other", "level": "view"},
    ),
    Case(
        "dataset-permissions",
        "delete",
        "/api/v1/datasets/{dataset}/permissions/?team=cardiology",
        (401, 404, 204, 404, 403, 403, 204, 404),
    ),
    Case(
        "job-permissions",
        "get",
        "/api/v1/jobs/{job}/permissions/",
        (401, 404, 200, 404, 403, 403, 200, 404),
    ),
    Case(
        "model-version-permissions",
        "get",
        "/api/v1/model-versions/{model_version}/permissions/",
        (401, 404, 200, 404, 403, 403, 200, 404),
    ),
    Case("user-list", "get", "/api/v1/users/", (401, 403, 403, 403, 403, 200, 200, 403)),
    Case("user-detail", "get", "/api/v1/users/{user}/", (401, 403, 403, 403, 403, 200, 200, 403)),
    Case(
        "user-detail",
        "patch",
        "/api/v1/users/{user}/",
        (401, 403, 403, 403, 403, 403, 200, 403),
        {"is_active": False},
    ),
    Case(
        "user-revoke-tokens",
        "post",
        "/api/v1/users/{user}/revoke-tokens/",
        (401, 403, 403, 403, 403, 403, 200, 403),
        {},
    ),
    Case("role-list", "get", "/api/v1/roles/", (401, 403, 403, 403, 403, 200, 200, 403)),
    Case(
        "role-list",
        "post",
        "/api/v1/roles/",
        (401, 403, 403, 403, 403, 403, 201, 403),
        {"name": "Reviewer", "permissions": ["jobs.view_job"]},
    ),
    Case("role-detail", "get", "/api/v1/roles/{role}/", (401, 403, 403, 403, 403, 200, 200, 403)),
    Case(
        "role-detail", "delete", "/api/v1/roles/{role}/", (401, 403, 403, 403, 403, 403, 204, 403)
    ),
    Case(
        "role-permission-choices",
        "get",
        "/api/v1/roles/permission-choices/",
        (401, 403, 403, 403, 403, 200, 200, 403),
    ),
    Case("team-list", "get", "/api/v1/teams/", (401, 200, 200, 200, 200, 200, 200, 200)),
    Case(
        "team-list",
        "post",
        "/api/v1/teams/",
        (401, 403, 403, 403, 403, 403, 201, 403),
        {"name": "oncology"},
    ),
    Case("team-detail", "get", "/api/v1/teams/{team}/", (401, 404, 404, 404, 200, 200, 200, 404)),
    Case(
        "team-members",
        "post",
        "/api/v1/teams/{team}/members/",
        (401, 403, 403, 403, 403, 403, 200, 403),
        {"user": "other"},
    ),
    Case(
        "audit-event-export",
        "get",
        "/api/v1/audit-events/export/?format=jsonl",
        (401, 403, 403, 403, 403, 200, 200, 403),
    ),
    Case(
        "audit-event-verify",
        "get",
        "/api/v1/audit-events/verify/",
        (401, 403, 403, 403, 403, 200, 200, 200),
    ),
    Case(
        "accounts:users",
        "get",
        "/account/users/",
        (302, 403, 403, 403, 403, 200, 200, 403),
        ui=True,
    ),
    Case(
        "accounts:user",
        "get",
        "/account/users/{user}/",
        (302, 403, 403, 403, 403, 200, 200, 403),
        ui=True,
    ),
    Case(
        "accounts:user_toggle_active",
        "post",
        "/account/users/{user}/active/",
        (302, 403, 403, 403, 403, 403, 302, 403),
        {},
        ui=True,
    ),
    Case(
        "accounts:user_revoke_tokens",
        "post",
        "/account/users/{user}/revoke-tokens/",
        (302, 403, 403, 403, 403, 403, 302, 403),
        {},
        ui=True,
    ),
    Case(
        "accounts:roles",
        "get",
        "/account/roles/",
        (302, 403, 403, 403, 403, 200, 200, 403),
        ui=True,
    ),
    Case(
        "accounts:role_new",
        "get",
        "/account/roles/new/",
        (302, 403, 403, 403, 403, 403, 200, 403),
        ui=True,
    ),
    Case(
        "accounts:role",
        "get",
        "/account/roles/{role}/",
        (302, 403, 403, 403, 403, 200, 200, 403),
        ui=True,
    ),
    Case(
        "accounts:role_delete",
        "post",
        "/account/roles/{role}/delete/",
        (302, 403, 403, 403, 403, 403, 302, 403),
        {},
        ui=True,
    ),
    Case(
        "accounts:teams",
        "get",
        "/account/teams/",
        (302, 403, 403, 403, 403, 200, 200, 403),
        ui=True,
    ),
    Case(
        "accounts:team",
        "get",
        "/account/teams/{team}/",
        (302, 403, 403, 403, 403, 200, 200, 403),
        ui=True,
    ),
    Case(
        "accounts:team_member_add",
        "post",
        "/account/teams/{team}/members/",
        (302, 403, 403, 403, 403, 403, 302, 403),
        {"username": "other"},
        ui=True,
    ),
    Case(
        "accounts:team_member_remove",
        "post",
        "/account/teams/{team}/members/{user}/remove/",
        (302, 403, 403, 403, 403, 403, 302, 403),
        {},
        ui=True,
    ),
    Case(
        "accounts:team_delete",
        "post",
        "/account/teams/{team}/delete/",
        (302, 403, 403, 403, 403, 403, 302, 403),
        {},
        ui=True,
    ),
    Case(
        "accounts:share",
        "post",
        "/account/share/dataset/{dataset}/",
        (302, 404, 302, 404, 403, 403, 302, 404),
        {"target": "user", "name": "other", "level": "view"},
        ui=True,
    ),
    Case(
        "accounts:share_revoke",
        "post",
        "/account/share/dataset/{dataset}/revoke/",
        (302, 404, 302, 404, 403, 403, 302, 404),
        {"target": "team", "name": "cardiology"},
        ui=True,
    ),
    Case(
        "audit:verify", "get", "/audit/verify/", (302, 403, 403, 403, 403, 200, 200, 200), ui=True
    ),
    # -- UI -------------------------------------------------------------------------------------
    Case("dashboard", "get", "/", UI_ALL, ui=True),
    Case("accounts:tokens", "get", "/account/tokens/", UI_ALL, ui=True),
    Case(
        "accounts:token_revoke",
        "post",
        "/account/tokens/{token}/revoke/",
        (302, 404, 302, 404, 404, 404, 404, 404),
        {},
        ui=True,
    ),
    Case("accounts:password_change", "get", "/account/password/", UI_ALL, ui=True),
    Case("datasets_app:list", "get", "/datasets/", UI_ALL, ui=True),
    Case(
        "datasets_app:create",
        "get",
        "/datasets/new/",
        (302, 403, 200, 200, 200, 403, 200, 403),
        ui=True,
    ),
    Case("datasets_app:detail", "get", "/datasets/{dataset}/", UI_OBJ, ui=True),
    Case(
        "datasets_app:delete",
        "post",
        "/datasets/{dataset}/delete/",
        (302, 404, 302, 404, 403, 403, 302, 404),
        {},
        ui=True,
    ),
    Case("datasets_app:version", "get", "/datasets/versions/{version}/", UI_OBJ, ui=True),
    Case("jobs:list", "get", "/jobs/", UI_ALL, ui=True),
    Case("jobs:new", "get", "/jobs/new/", (302, 403, 200, 200, 200, 403, 200, 403), ui=True),
    Case("jobs:compare", "get", "/jobs/compare/?ids={job}", UI_OBJ, ui=True),
    Case("jobs:detail", "get", "/jobs/{job}/", UI_OBJ, ui=True),
    Case("jobs:model_version", "get", "/models/versions/{model_version}/", UI_OBJ, ui=True),
    Case("jobs:base_models", "get", "/models/", UI_ALL, ui=True),
    Case("audit:list", "get", "/audit/", (302, 403, 403, 403, 403, 200, 200, 200), ui=True),
]


def _routes(patterns, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern).startswith("admin/"):
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _routes(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}{pattern.name}")
    return names


def test_every_route_is_in_the_matrix():
    covered = {case.route for case in CASES} | PUBLIC
    missing = _routes(get_resolver().url_patterns) - covered
    assert not missing, f"routes without a row in the permission matrix: {sorted(missing)}"


def _client(case: Case, user):
    client = Client() if case.ui else APIClient()
    if user is not None:
        client.force_login(user)
    return client


def _call(case: Case, ids: dict, user):
    client = _client(case, user)
    path = case.path.format(**ids)
    if case.payload == "upload":
        file = SimpleUploadedFile("more.jsonl", b'{"text": "another row"}\n')
        return client.post(path, {"file": file}, format="multipart")
    if case.payload == "training":
        return client.post(path, training_body(ids["base_model"], ids["version"]), format="json")
    if case.ui:
        return getattr(client, case.method)(path, case.payload or {})
    if case.payload is None:
        return getattr(client, case.method)(path)
    return getattr(client, case.method)(path, case.payload, format="json")


@pytest.mark.parametrize(
    ("case", "actor"),
    [pytest.param(c, a, id=f"{c.id}-{a}") for c in CASES for a in ACTORS],
)
def test_permission_matrix(world, case, actor):
    ids, actors = world
    expected = case.expected[ACTORS.index(actor)]
    response = _call(case, ids, actors[actor])
    body = getattr(response, "content", b"")[:300]
    assert response.status_code == expected, body
    if expected == 404 and "{" in case.path:
        assert AuditEvent.objects.filter(
            outcome="denied", actor_username=actors[actor].username
        ).exists(), "an invisible object must leave a denied event"
    if expected == 403 and actors[actor] is not None:
        assert AuditEvent.objects.filter(
            outcome="denied", actor_username=actors[actor].username
        ).exists(), "a refused action must leave a denied event"


# -- lists and raw values -----------------------------------------------------------------------
LISTS = {
    "dataset": "/api/v1/datasets/",
    "version": "/api/v1/dataset-versions/",
    "job": "/api/v1/jobs/",
    "model_version": "/api/v1/model-versions/",
}
SEES_OBJECTS = {"owner", "team", "auditor", "admin"}


@pytest.mark.parametrize("actor", ACTORS[1:])
def test_lists_contain_exactly_what_the_actor_may_see(world, actor):
    ids, actors = world
    client = api_as(actors[actor])
    for kind, path in LISTS.items():
        body = client.get(path).json()
        found = [row["id"] for row in body["results"]]
        expected = [ids[kind]] if actor in SEES_OBJECTS else []
        assert found == expected, (kind, body)
        assert body["count"] == len(expected)  # no leaking counts


@pytest.mark.parametrize("actor", ["viewer", "other", "custom"])
def test_pages_never_name_invisible_objects(world, actor):
    _, actors = world
    client = Client()
    client.force_login(actors[actor])
    # The dashboard's activity feed is the audit trail for those who may read it (custom).
    pages = ["/datasets/", "/jobs/", "/models/"] + ([] if actor == "custom" else ["/"])
    for path in pages:
        page = client.get(path).content.decode()
        assert "ward-7" not in page, path


@pytest.mark.parametrize(
    ("actor", "raw"),
    [("owner", True), ("admin", True), ("team", False), ("auditor", False)],
)
def test_raw_values_follow_view_raw(world, actor, raw):
    ids, actors = world
    client = api_as(actors[actor])
    preview = client.get(f"/api/v1/dataset-versions/{ids['version']}/preview/").json()
    assert preview["raw"] is raw
    assert (SECRET_ID in json.dumps(preview, ensure_ascii=False)) is raw
    browser = Client()
    browser.force_login(actors[actor])
    html = browser.get(f"/datasets/versions/{ids['version']}/").content.decode()
    assert (SECRET_ID in html) is raw


def test_granting_view_raw_to_the_team_unmasks_for_its_members(world):
    from accounts.models import Team
    from accounts.sharing import share_grant
    from datasets_app.models import Dataset

    ids, actors = world
    dataset = Dataset.objects.get(pk=ids["dataset"])
    team = Team.objects.get(pk=ids["team"])
    share_grant(actor=actors["owner"], obj=dataset, team=team, level="use", view_raw=True)
    preview = api_as(actors["team"]).get(f"/api/v1/dataset-versions/{ids['version']}/preview/")
    assert SECRET_ID in json.dumps(preview.json(), ensure_ascii=False)
