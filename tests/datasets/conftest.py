"""Fixtures for dataset tests: a private storage folder and upload helpers."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import roles
from datasets_app.services import dataset_create

ALPACA_ROWS = [
    {
        "instruction": "提取身份证号",
        "input": "患者张三，身份证号110105199003071239，电话13812345678。",
        "output": "110105199003071239",
    },
    {
        "instruction": "Summarise",
        "input": "Card 6222020200112233446 was used at 2024-03-05 14:30.",
        "output": "A card payment.",
    },
    {"instruction": "Translate", "input": "高血压", "output": "hypertension"},
]


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.HEARTH_STORAGE_DIR = tmp_path / "storage"
    settings.DATA_DIR = tmp_path / "data"
    return settings.HEARTH_STORAGE_DIR


@pytest.fixture
def owner(make_user):
    return make_user("owner", roles.DATA_SCIENTIST)


@pytest.fixture
def dataset(owner):
    return dataset_create(owner=owner, name="ward notes")


def jsonl_bytes(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def upload(client, dataset, content: bytes, name: str = "data.jsonl"):
    return client.post(
        f"/api/v1/datasets/{dataset.pk}/versions/",
        {"file": SimpleUploadedFile(name, content)},
        format="multipart",
    )


def as_file(content: bytes):
    return io.BytesIO(content)
