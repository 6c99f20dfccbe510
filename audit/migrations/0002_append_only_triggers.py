from django.db import migrations

from audit import db


class Migration(migrations.Migration):
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of audit entries in the
    database itself, whoever asks."""

    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: db.install(schema_editor),
            lambda apps, schema_editor: db.uninstall(schema_editor),
        ),
    ]
