"""Drop the offer table's two single-column key indexes (model: `db_index=False` on both keys).

`one_notification_per_mitra` (session_id, mitra_id) and `notification_mitra_idx` (mitra_id,
notified_at DESC) lead with the same columns and serve every lookup by either key, including the
foreign keys' own checks; the two extra indexes only cost every offer row two more index writes
(~35 % of a 10,000-row blast insert, docs/performance.md). Only the indexes go: the foreign-key
constraints stay as they are (Django's AlterField would drop and re-add them, re-checking the whole
table under lock).
"""

import django.db.models.deletion
from django.db import migrations, models

MITRA_INDEX = "chat_request_notifications_mitra_id_c964846a"
SESSION_INDEX = "chat_request_notifications_session_id_0b9d080d"


class Migration(migrations.Migration):
    dependencies = [
        ("mitras", "0003_matching"),
        ("sessions_app", "0005_user_event_counter_fillfactor"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="chatrequestnotification",
                    name="mitra",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="chat_request_notifications",
                        to="mitras.mitra",
                    ),
                ),
                migrations.AlterField(
                    model_name="chatrequestnotification",
                    name="session",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to="sessions_app.chatsession",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{MITRA_INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{MITRA_INDEX}" ON chat_request_notifications (mitra_id)',
                ),
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{SESSION_INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX IF NOT EXISTS "{SESSION_INDEX}" ON chat_request_notifications (session_id)'
                    ),
                ),
            ],
        )
    ]
