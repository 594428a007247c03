"""Every event has a chain position now (0003): make it unique and required."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_chain_existing_events")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="position",
            field=models.PositiveBigIntegerField(unique=True, verbose_name="chain position"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ),
    ]
