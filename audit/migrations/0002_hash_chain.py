"""The hash chain: positions and links on events, the chain head, retention checkpoints."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="created_at",
            field=models.DateTimeField(db_index=True, verbose_name="time"),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="position",
            field=models.PositiveBigIntegerField(null=True, verbose_name="chain position"),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", max_length=64, verbose_name="previous link"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(default="", max_length=64, verbose_name="link"),
            preserve_default=False,
        ),
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveBigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
            ],
            options={"default_permissions": ()},
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(verbose_name="time")),
                (
                    "archive_name",
                    models.CharField(max_length=200, unique=True, verbose_name="archive file"),
                ),
                (
                    "first_position",
                    models.PositiveBigIntegerField(unique=True, verbose_name="first position"),
                ),
                (
                    "last_position",
                    models.PositiveBigIntegerField(unique=True, verbose_name="last position"),
                ),
                (
                    "first_prev_hash",
                    models.CharField(max_length=64, verbose_name="link before the first event"),
                ),
                ("last_hash", models.CharField(max_length=64, verbose_name="last link")),
                (
                    "plaintext_sha256",
                    models.CharField(max_length=64, verbose_name="archive SHA-256"),
                ),
                ("count", models.PositiveBigIntegerField(verbose_name="events")),
                ("mac", models.CharField(max_length=64, verbose_name="checkpoint MAC")),
            ],
            options={
                "verbose_name": "audit checkpoint",
                "verbose_name_plural": "audit checkpoints",
                "ordering": ["first_position"],
                "default_permissions": ("view",),
            },
        ),
    ]
