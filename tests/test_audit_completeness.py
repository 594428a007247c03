"""Every mutating endpoint and every read of data leaves its audit event, carrying the request
id of the request that caused it; every refusal leaves a denied event with that id.

One table: (request, actor, the action expected in the trail). The request id is sent by the
client (`X-Request-ID`), so the test finds exactly the events of that request.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from jobs.models import Job
from tests.matrix_world import training_body

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)


@dataclass(frozen=True)
class Audited:
    method: str
    path: str
    actor: str
    action: str  # the event the request must leave
    payload: Any = None
    ui: bool = False
    outcome: str = "allowed"


CASES = [
    # datasets and their data
    Audited("post", "/api/v1/datasets/", "owner", "datasets_app.dataset.create", {"name": "n"}),
    Audited(
        "patch",
        "/api/v1/datasets/{dataset}/",
        "owner",
        "datasets_app.dataset.change",
        {"description": "d"},
    ),
    Audited("delete", "/api/v1/datasets/{dataset}/", "owner", "datasets_app.dataset.delete"),
    Audited(
        "post",
        "/api/v1/datasets/{dataset}/versions/",
        "owner",
        "datasets_app.version.upload",
        "file",
    ),
    Audited(
        "patch",
        "/api/v1/dataset-versions/{version}/",
        "owner",
        "datasets_app.version.mark_sensitive",
        {"sensitive_columns": ["input", "output"]},
    ),
    Audited(
        "get",
        "/api/v1/dataset-versions/{version}/preview/",
        "team",
        "datasets_app.version.preview",
    ),
    Audited(
        "get",
        "/api/v1/dataset-versions/{version}/download/",
        "owner",
        "datasets_app.version.download",
    ),
    Audited(
        "get", "/datasets/versions/{version}/", "auditor", "datasets_app.version.preview", ui=True
    ),
    Audited(
        "post",
        "/api/v1/dataset-versions/{version}/desensitize/",
        "owner",
        "jobs.job.submit",  # the processing job, whose details name the operation
        {"preset": "pipl"},
    ),
    Audited(
        "post",
        "/api/v1/dataset-versions/{version}/desensitize-preview/",
        "owner",
        "datasets_app.version.desensitize_preview",
        {"preset": "pipl"},
    ),
    Audited(
        "post",
        "/api/v1/dataset-versions/{version}/augment/",
        "owner",
        "jobs.job.submit",
        {"config": {"copies": 1, "seed": 1, "ops": {"swap": {"n": 1}}}},
    ),
    # jobs and models
    Audited("post", "/api/v1/jobs/", "team", "jobs.job.submit", "training"),
    Audited("post", "/api/v1/jobs/{job}/cancel/", "owner", "jobs.job.cancel"),
    Audited("post", "/api/v1/jobs/{job}/retry/", "owner", "jobs.job.retry", "failed-job"),
    Audited(
        "get",
        "/api/v1/model-versions/{model_version}/download/?file=adapter_config.json",
        "owner",
        "jobs.modelversion.download",
    ),
    # tokens, sharing, roles, teams, users
    Audited("post", "/api/v1/tokens/", "viewer", "accounts.token.create", {"name": "ci"}),
    Audited("delete", "/api/v1/tokens/{token}/", "owner", "accounts.token.revoke"),
    Audited(
        "post",
        "/api/v1/datasets/{dataset}/permissions/",
        "owner",
        "permission.grant",
        {"user": "other", "level": "view"},
    ),
    Audited(
        "delete",
        "/api/v1/datasets/{dataset}/permissions/?team=cardiology",
        "owner",
        "permission.revoke",
    ),
    Audited(
        "post",
        "/api/v1/roles/",
        "admin",
        "accounts.role.create",
        {"name": "Reviewer", "permissions": ["jobs.view_job"]},
    ),
    Audited("post", "/api/v1/teams/", "admin", "accounts.team.create", {"name": "oncology"}),
    Audited(
        "post",
        "/api/v1/teams/{team}/members/",
        "admin",
        "accounts.team.member_add",
        {"user": "other"},
    ),
    Audited(
        "patch", "/api/v1/users/{user}/", "admin", "accounts.user.deactivate", {"is_active": False}
    ),
    # the trail itself
    Audited("get", "/api/v1/audit-events/export/?format=csv", "auditor", "audit.export"),
    Audited("get", "/api/v1/audit-events/verify/", "auditor", "audit.verify"),
    # refusals: invisible (404) and visible but not allowed (403)
    Audited("get", "/api/v1/datasets/{dataset}/", "other", "", outcome="denied"),
    Audited("patch", "/api/v1/datasets/{dataset}/", "team", "", {"name": "x"}, outcome="denied"),
    Audited(
        "get",
        "/api/v1/dataset-versions/{version}/download/",
        "team",
        "datasets_app.dataset.view_raw",
        outcome="denied",
    ),
    Audited("get", "/datasets/{dataset}/", "viewer", "", ui=True, outcome="denied"),
    Audited("get", "/jobs/new/", "auditor", "", ui=True, outcome="denied"),
    Audited("get", "/api/v1/audit-events/{event}/", "owner", "", outcome="denied"),
    Audited("get", "/api/v1/users/", "owner", "", outcome="denied"),
]


def _send(case: Audited, ids: dict, user, request_id: str):
    client = Client() if case.ui else APIClient()
    client.force_login(user)
    path = case.path.format(**ids)
    headers = {"HTTP_X_REQUEST_ID": request_id}
    if case.payload == "file":
        file = SimpleUploadedFile("more.jsonl", b'{"text": "another row"}\n')
        return client.post(path, {"file": file}, format="multipart", **headers)
    if case.payload == "training":
        body = training_body(ids["base_model"], ids["version"])
        return client.post(path, body, format="json", **headers)
    if case.payload == "failed-job":
        Job.objects.filter(pk=ids["job"]).update(status=Job.Status.FAILED)
        return client.post(path, **headers)
    if case.payload is None or case.ui:
        return getattr(client, case.method)(path, case.payload or {}, **headers)
    return getattr(client, case.method)(path, case.payload, format="json", **headers)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"{c.method}-{c.path}-{c.actor}-{c.outcome}") for c in CASES]
)
def test_the_request_leaves_its_event_with_the_request_id(world, case):
    ids, actors = world
    request_id = f"completeness-{next(_ids):04d}"
    response = _send(case, ids, actors[case.actor], request_id)
    if case.outcome == "allowed":
        assert response.status_code < 400, getattr(response, "content", b"")[:300]
    else:
        assert response.status_code in (403, 404), response.status_code
    events = AuditEvent.objects.filter(request_id=request_id, outcome=case.outcome)
    if case.action:
        events = events.filter(action=case.action)
    found = list(events.values_list("action", "actor_username"))
    assert found, (
        f"no {case.outcome} {case.action or 'event'} for request {request_id}; the request left: "
        f"{list(AuditEvent.objects.filter(request_id=request_id).values_list('action', 'outcome'))}"
    )
    assert all(username == actors[case.actor].username for _, username in found)
