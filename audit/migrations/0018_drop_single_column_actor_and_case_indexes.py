# The single-column indexes on actor_id and case_id go: the composite indexes
# audit_actor_newest and audit_case_newest (0007) begin with those columns and serve
# every search by person or by case, so these were written with every entry and never
# read.
#
# Dropped with DROP INDEX on both databases, not by altering the fields: Django would
# rebuild the whole table on SQLite to alter a field, and a rebuild drops the
# append-only triggers with the old table. The fields' new state is recorded alongside.

from django.db import migrations, models

INDEXES = {
    "audit_auditevent_actor_id_270bb4b7": "actor_id",
    "audit_auditevent_case_id_e19cbaff": "case_id",
}


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0017_family_plan'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=[f'DROP INDEX IF EXISTS "{name}"' for name in INDEXES],
                    reverse_sql=[f'CREATE INDEX "{name}" ON "audit_auditevent" ("{column}")'
                                 for name, column in INDEXES.items()],
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='auditevent',
                    name='actor_id',
                    field=models.PositiveBigIntegerField(blank=True, null=True),
                ),
                migrations.AlterField(
                    model_name='auditevent',
                    name='case_id',
                    field=models.PositiveBigIntegerField(blank=True, null=True),
                ),
            ],
        ),
    ]
