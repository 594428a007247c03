"""API v1 plumbing: authentication, root, schema and docs, error shape, pagination, CSRF."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import roles
from accounts.services import api_token_create
from datasets_app.models import Dataset
from datasets_app.services import dataset_create
from tests.conftest import api_as

pytestmark = pytest.mark.django_db

ROOT = "/api/v1/"
DATASETS = "/api/v1/datasets/"
LIST_ENDPOINTS = ["tokens", "datasets", "base-models", "workers", "audit-events"]


@pytest.fixture
def logged_in(client, scientist):
    client.force_login(scientist)
    return client


# -- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", [ROOT, *(f"{ROOT}{name}/" for name in LIST_ENDPOINTS)])
def test_the_api_needs_authentication(api, path):
    response = api.get(path)

    assert response.status_code in (401, 403)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    assert body["code"] == "not_authenticated"


def test_anonymous_gets_401_with_a_bearer_challenge(api):
    response = api.get(ROOT)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_root_lists_the_resources(scientist):
    response = api_as(scientist).get(ROOT)

    assert response.status_code == 200
    body = response.json()
    assert set(LIST_ENDPOINTS) <= set(body)
    assert body["datasets"].endswith(DATASETS)


# -- schema and docs --------------------------------------------------------------------------
def test_schema_is_an_openapi_3_document(logged_in):
    response = logged_in.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/datasets/", "/api/v1/tokens/"} <= set(schema["paths"])
    assert "post" in schema["paths"]["/api/v1/tokens/"]


def test_schema_needs_authentication():
    assert Client().get("/api/schema/").status_code in (401, 403)


def test_schema_documents_bearer_tokens(logged_in):
    schema = logged_in.get("/api/schema/", {"format": "json"}).json()
    schemes = schema["components"]["securitySchemes"].values()
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes)


def test_docs_use_only_local_assets(logged_in):
    response = logged_in.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "cdn" not in page.lower()
    assert "jsdelivr" not in page.lower()
    sources = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', page)
    assert sources
    external = [s for s in sources if s.startswith(("http://", "https://", "//"))]
    assert external == []
    bundle = [s for s in sources if s.endswith("swagger-ui-bundle.js")]
    assert len(bundle) == 1
    assert bundle[0].startswith("/static/")


def test_docs_assets_are_served(logged_in):
    page = logged_in.get("/api/docs/").content.decode()
    bundle = re.search(r'src="([^"]*swagger-ui-bundle\.js)"', page).group(1)

    response = logged_in.get(bundle)

    assert response.status_code == 200


# -- errors -----------------------------------------------------------------------------------
def test_validation_errors_have_the_standard_shape(scientist):
    response = api_as(scientist).post(DATASETS, {"name": ""}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "code", "fields"}
    assert body["code"] == "invalid"
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body["fields"]) == {"name"}
    assert isinstance(body["fields"]["name"], list)
    assert body["fields"]["name"]


def test_unknown_api_paths_answer_json_404(scientist, settings):
    settings.DEBUG = False

    response = api_as(scientist).get("/api/v1/nope/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_unknown_pages_outside_the_api_stay_html(logged_in, settings):
    settings.DEBUG = False

    response = logged_in.get("/nope/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_missing_object_answers_json_404(scientist):
    response = api_as(scientist).get(f"{DATASETS}999999/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def test_a_missing_object_has_the_not_found_code(scientist):
    response = api_as(scientist).get(f"{DATASETS}999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_forbidden_create_answers_json_403(make_user):
    viewer = make_user("vera", roles.VIEWER)

    response = api_as(viewer).post(DATASETS, {"name": "nope"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


# -- pagination -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LIST_ENDPOINTS)
def test_list_endpoints_paginate(admin_user, name):
    response = api_as(admin_user).get(f"{ROOT}{name}/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert isinstance(body["results"], list)


def test_page_size_is_honoured_for_datasets(scientist):
    for n in range(3):
        dataset_create(owner=scientist, name=f"set {n}")
    client = api_as(scientist)

    first = client.get(DATASETS, {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert "page_size=2" in first["next"]
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert second["previous"] is not None
    names = {d["name"] for d in first["results"] + second["results"]}
    assert names == {"set 0", "set 1", "set 2"}


def test_page_size_is_honoured_for_tokens(scientist):
    for n in range(3):
        api_token_create(user=scientist, name=f"token {n}")

    body = api_as(scientist).get("/api/v1/tokens/", {"page_size": 1}).json()

    assert body["count"] == 3
    assert len(body["results"]) == 1


# -- CSRF -------------------------------------------------------------------------------------
@pytest.fixture
def csrf_client(scientist):
    client = Client(enforce_csrf_checks=True)
    client.force_login(scientist)
    return client


def test_session_writes_without_a_csrf_token_are_refused(csrf_client):
    response = csrf_client.post(DATASETS, {"name": "no csrf"}, content_type="application/json")

    assert response.status_code == 403
    body = response.json()
    assert "CSRF" in body["detail"]
    assert body["code"] == "permission_denied"
    assert not Dataset.objects.filter(name="no csrf").exists()


def test_session_writes_with_a_csrf_token_are_accepted(csrf_client):
    csrf_client.get("/account/tokens/")  # a page with a form sets the CSRF cookie
    token = csrf_client.cookies["csrftoken"].value

    response = csrf_client.post(
        DATASETS, {"name": "with csrf"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 201, response.content


def test_bearer_token_writes_need_no_csrf_token(scientist):
    raw = api_token_create(user=scientist, name="ci").raw
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.post(DATASETS, {"name": "token write"}, format="json")

    assert response.status_code == 201, response.content
