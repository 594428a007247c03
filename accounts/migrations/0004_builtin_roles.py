"""Mark the four built-in role groups as built-in Roles and create the object permissions that
sharing needs on jobs and model versions (`manage_job`, `use_modelversion`, …)."""

from django.db import migrations

from accounts.roles import sync_roles


def forwards(apps, schema_editor):
    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_roles_teams"),
        ("jobs", "0003_training"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
