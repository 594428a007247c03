"""The built-in roles (data migration 0002_roles) and the `bootstrap` management command."""

from __future__ import annotations

import importlib
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts import roles
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def group_perms(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


def test_the_four_roles_exist():
    names = set(Group.objects.values_list("name", flat=True))
    assert {roles.ADMIN, roles.DATA_SCIENTIST, roles.AUDITOR, roles.VIEWER} <= names
    assert set(roles.ROLE_PERMISSIONS) == {
        roles.ADMIN,
        roles.DATA_SCIENTIST,
        roles.AUDITOR,
        roles.VIEWER,
    }


def test_the_roles_migration_itself_creates_the_groups_and_grants():
    """Run 0002_roles' forward function on the historical models, not the post_migrate hook."""
    migration = importlib.import_module("accounts.migrations.0002_roles")
    state_apps = MigrationExecutor(connection).loader.project_state(("accounts", "0002_roles")).apps
    Group.objects.filter(name__in=list(roles.ROLE_PERMISSIONS)).delete()
    assert not Group.objects.filter(name__in=list(roles.ROLE_PERMISSIONS)).exists()

    migration.create_roles(state_apps, None)

    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLE_PERMISSIONS)
    assert "audit.view_auditevent" in group_perms(roles.AUDITOR)
    assert "datasets_app.add_dataset" in group_perms(roles.DATA_SCIENTIST)
    assert "datasets_app.view_dataset" not in group_perms(roles.DATA_SCIENTIST)
    assert "datasets_app.delete_dataset" in group_perms(roles.ADMIN)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            roles.ADMIN,
            {
                "datasets_app.add_dataset",
                "datasets_app.view_dataset",
                "datasets_app.change_dataset",
                "datasets_app.delete_dataset",
                "audit.view_auditevent",
                "audit.export_auditevent",
                "accounts.view_apitoken",
                "jobs.view_basemodel",
                "jobs.view_worker",
                "auth.add_user",
                "auth.change_user",
                "auth.view_group",
                "auth.change_group",
            },
        ),
        (
            roles.DATA_SCIENTIST,
            {"datasets_app.add_dataset", "jobs.view_basemodel", "jobs.view_worker"},
        ),
        (
            roles.AUDITOR,
            {
                "audit.view_auditevent",
                "audit.export_auditevent",
                "datasets_app.view_dataset",
                "jobs.view_basemodel",
                "auth.view_user",
            },
        ),
        (roles.VIEWER, {"jobs.view_basemodel"}),
    ],
)
def test_role_has_its_key_permissions(role, expected):
    assert expected <= group_perms(role)


def test_admin_holds_every_permission_of_hearths_apps():
    from django.contrib.auth.models import Permission

    hearth = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(
            content_type__app_label__in=roles.HEARTH_APPS
        ).values_list("content_type__app_label", "codename")
    }
    assert hearth
    assert hearth <= group_perms(roles.ADMIN)


@pytest.mark.parametrize(
    ("role", "absent"),
    [
        # Data Scientists see only what they own or what is shared with them, per object.
        (
            roles.DATA_SCIENTIST,
            {
                "datasets_app.view_dataset",
                "datasets_app.change_dataset",
                "datasets_app.delete_dataset",
                "audit.view_auditevent",
            },
        ),
        (roles.AUDITOR, {"datasets_app.change_dataset", "datasets_app.add_dataset"}),
        (roles.VIEWER, {"datasets_app.add_dataset", "audit.view_auditevent"}),
        # ROLE_PERMISSIONS grants user administration but not user deletion.
        (roles.ADMIN, {"auth.delete_user"}),
    ],
)
def test_role_lacks_permissions_it_must_not_have(role, absent):
    assert not absent & group_perms(role)


def test_data_scientist_has_no_global_view_dataset(scientist):
    assert not scientist.has_perm("datasets_app.view_dataset")
    assert scientist.has_perm("datasets_app.add_dataset")


def run_bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap", "--skip-demo-model", *args, stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    match = re.search(r"password: (\S+)", output)
    assert match, output
    return match.group(1)


def test_bootstrap_creates_a_superuser_admin_with_a_printed_random_password():
    output = run_bootstrap()

    password = printed_password(output)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.is_active
    assert admin.groups.filter(name=roles.ADMIN).exists()
    assert len(password) >= 16
    assert admin.check_password(password)
    event = AuditEvent.objects.get(action="accounts.user.create", object_id=str(admin.pk))
    assert event.actor_username == "system"
    assert password not in str(event.details)


def test_bootstrap_passwords_are_random():
    first = printed_password(run_bootstrap("--username", "admin-one"))
    second = printed_password(run_bootstrap("--username", "admin-two"))
    assert first != second


def test_bootstrap_second_run_keeps_the_account_and_prints_no_password():
    password = printed_password(run_bootstrap())
    admin = get_user_model().objects.get(username="admin")

    output = run_bootstrap()

    assert "existing account" in output
    assert "password:" not in output
    assert password not in output
    assert get_user_model().objects.filter(username="admin").count() == 1
    admin.refresh_from_db()
    assert admin.check_password(password)
    assert AuditEvent.objects.filter(action="accounts.user.create").count() == 1
