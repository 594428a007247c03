"""One small world of every kind of object and every kind of actor, for the permission matrix
and the audit completeness tests.

The owner (a Data Scientist) holds a dataset with one version whose `input` column is marked
sensitive, a queued training job on it, and a model version with one stored file. A team the
member belongs to is given "use" on the dataset (train, no raw values) and "view" on the job and
model; a custom role ("Compliance officer") may read the audit trail and nothing else.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts import roles
from accounts.services import api_token_create
from audit.services import record
from datasets_app import storage
from datasets_app.services import dataset_create
from jobs.gates import default_gate
from jobs.models import Job, ModelVersion, Worker
from tests.conftest import api_as

ACTORS = ("anonymous", "viewer", "owner", "other", "team", "auditor", "admin", "custom")
SECRET_ID = "110105199003071239"  # a resident id in the sensitive column
ROWS = [
    {
        "instruction": "提取身份证号",
        "input": f"患者张三，身份证号{SECRET_ID}。",
        "output": "已记录",
    },
    {"instruction": "Translate", "input": "高血压", "output": "hypertension"},
    {"instruction": "Summarise", "input": "Stent placed; recovered well.", "output": "Recovered."},
]


def training_body(base_model: int, version: int) -> dict:
    return {
        "kind": "training",
        "base_model": base_model,
        "dataset_version": version,
        "params": {"max_steps": 1, "max_seq_length": 64, "precision": "fp32"},
    }


@pytest.fixture
def world(make_user, demo_model, settings, tmp_path):
    from accounts.services import role_create, team_create, team_member_add
    from accounts.sharing import share_grant

    settings.HEARTH_STORAGE_DIR = tmp_path / "storage"
    owner = make_user("owner", roles.DATA_SCIENTIST)
    member = make_user("member", roles.DATA_SCIENTIST)
    admin = make_user("boss", roles.ADMIN)
    custom = make_user("officer")
    role = role_create(
        actor=admin, name="Compliance officer", permissions=["audit.view_auditevent"]
    )
    custom.groups.add(role.group)
    actors = {
        "anonymous": None,
        "viewer": make_user("viewer", roles.VIEWER),
        "owner": owner,
        "other": make_user("other", roles.DATA_SCIENTIST),
        "team": member,
        "auditor": make_user("auditor", roles.AUDITOR),
        "admin": admin,
        "custom": custom,
    }

    dataset = dataset_create(owner=owner, name="ward-7 notes")
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
    owner_api = api_as(owner)
    response = owner_api.post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"file": SimpleUploadedFile("notes.jsonl", content)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    version = response.json()["id"]
    marked = owner_api.patch(
        f"/api/v1/dataset-versions/{version}/", {"sensitive_columns": ["input"]}, format="json"
    )
    assert marked.status_code == 200, marked.content
    job = owner_api.post("/api/v1/jobs/", training_body(demo_model.pk, version), format="json")
    assert job.status_code == 201, job.content
    job = Job.objects.get(pk=job.json()["id"])
    model_version = _model_version(owner, demo_model, job, dataset)

    team = team_create(actor=admin, name="cardiology")
    team_member_add(actor=admin, team=team, user=member)
    share_grant(actor=owner, obj=dataset, team=team, level="use")
    share_grant(actor=owner, obj=job, team=team, level="view")
    share_grant(actor=owner, obj=model_version, team=team, level="view")

    ids = {
        "dataset": dataset.pk,
        "version": version,
        "job": job.pk,
        "model_version": model_version.pk,
        "base_model": demo_model.pk,
        "worker": _worker().pk,
        "token": api_token_create(user=owner, name="laptop").token.pk,
        "event": record(action="test.event", actor=owner).pk,
        "team": team.pk,
        "gate": default_gate().pk,
        "role": role.pk,
        "user": member.pk,
    }
    return ids, actors


def _worker() -> Worker:
    now = timezone.now()
    return Worker.objects.create(
        hostname="gpu-1@node",
        host="node",
        pid=1,
        queues=["gpu"],
        started_at=now,
        last_heartbeat=now,
    )


def _model_version(owner, base_model, job: Job, dataset) -> ModelVersion:
    from guardian.shortcuts import assign_perm

    key = storage.new_storage_key("models/matrix")
    body = b'{"r": 8}'
    with storage.encrypted_output(key) as out:
        out.write(body)
    version = ModelVersion.objects.create(
        owner=owner,
        name="ward-7-lora",
        job=job,
        base_model=base_model,
        dataset_version=dataset.versions.first(),
        method="lora",
        files=[
            {
                "name": "adapter_config.json",
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "storage_key": key,
            }
        ],
    )
    for action in ("view", "change", "delete"):  # as the worker grants them (jobs.training)
        assign_perm(f"jobs.{action}_modelversion", owner, version)
    return version
