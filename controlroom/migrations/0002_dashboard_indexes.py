"""Indexes the dashboard's aggregates need at scale (bench/controlroom, docs/performance.md).

They sit on other apps' tables, so they are plain SQL here rather than fields of those models'
Meta: today's sessions and the 24-hour chart scan chat_sessions by creation time; today's revenue
sums consumed payments by confirmation time; "stale" counts online mitras by last heartbeat.
"""

from django.db import migrations

INDEXES = [
    (
        "controlroom_session_created_idx",
        "CREATE INDEX IF NOT EXISTS controlroom_session_created_idx ON chat_sessions (created_at)",
    ),
    (
        "controlroom_payment_consumed_idx",
        "CREATE INDEX IF NOT EXISTS controlroom_payment_consumed_idx ON payment_requests (confirmed_at)"
        " INCLUDE (amount) WHERE status = 'consumed'",
    ),
    (
        "controlroom_online_heartbeat_idx",
        "CREATE INDEX IF NOT EXISTS controlroom_online_heartbeat_idx ON mitra_online_status (last_heartbeat_at)"
        " WHERE is_online",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("controlroom", "0001_initial"),
        ("sessions_app", "0001_initial"),
        ("payments", "0001_initial"),
        ("mitras", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(sql=create, reverse_sql=f"DROP INDEX IF EXISTS {name}") for name, create in INDEXES
    ]
