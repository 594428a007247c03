"""Helpers for the audit tests: tampering with the table as someone with database access would
(raw SQL, past the model's append-only guard), and the three ways to verify."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts import roles
from audit.models import AuditEvent
from tests.conftest import api_as

TABLE = AuditEvent._meta.db_table
PARK = 10**12  # far beyond any test position: a parking slot while positions are moved


@pytest.fixture
def auditor(make_user):
    return make_user("audrey", roles.AUDITOR)


def sql(statement: str, params: list | tuple = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement.replace("{t}", connection.ops.quote_name(TABLE)), params)
        return cursor.rowcount


def event_at(position: int) -> AuditEvent:
    return AuditEvent.objects.get(position=position)


def shift_up(from_position: int, by: int = 1) -> None:
    """Move every event at or after `from_position` up by `by`, as an attacker making room for an
    insertion would (in two steps: positions are unique)."""
    sql("UPDATE {t} SET position = position + %s WHERE position >= %s", [PARK, from_position])
    sql("UPDATE {t} SET position = position - %s WHERE position >= %s", [PARK - by, PARK])


def close_gap(after_position: int) -> None:
    """Renumber the events after a deleted one so that no position is missing."""
    sql("UPDATE {t} SET position = position + %s WHERE position > %s", [PARK, after_position])
    sql(
        "UPDATE {t} SET position = position - %s WHERE position >= %s",
        [PARK + 1, PARK + after_position],
    )


def insert_forged(position: int, prev_hash: str, action: str = "forged.event") -> int:
    """A row that looks like an event; its link is a plain SHA-256, the best anyone without the
    audit key can do."""
    fake = hashlib.sha256(f"{prev_hash}{action}".encode()).hexdigest()
    sql(
        "INSERT INTO {t} (created_at, actor_username, ip, user_agent, request_id, action, "
        "object_type, object_id, object_repr, outcome, details, position, prev_hash, hash) "
        "VALUES (%s, %s, NULL, '', '', %s, '', '', '', 'allowed', %s, %s, %s, %s)",
        [datetime.now(UTC), "mallory", action, "{}", position, prev_hash, fake],
    )
    return AuditEvent.objects.get(position=position).pk


def swap_positions(a: int, b: int) -> None:
    sql("UPDATE {t} SET position = %s WHERE position = %s", [PARK, a])
    sql("UPDATE {t} SET position = %s WHERE position = %s", [a, b])
    sql("UPDATE {t} SET position = %s WHERE position = %s", [b, PARK])


def verify_by_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def verify_by_api(user, query: str = "") -> dict:
    response = api_as(user).get(f"/api/v1/audit-events/verify/{query}")
    assert response.status_code == 200, response.content
    return response.json()
