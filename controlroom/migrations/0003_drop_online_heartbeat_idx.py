"""Drop the index on mitra_online_status (last_heartbeat_at) WHERE is_online.

An index on last_heartbeat_at makes every heartbeat-mirror row update a non-HOT update (a new
tuple plus an entry in each index): at 100k online mitras the mirror went from ~0.5 s to ~2 s per
cycle (docs/performance.md, "Availability at scale"). The dashboard's stale count it served now
comes from Valkey with the other presence counts (availability.readers.dashboard_counts); the
Valkey-down fallback counts without it (one scan of the status table).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("controlroom", "0002_dashboard_indexes")]

    operations = [
        migrations.RunSQL(
            "DROP INDEX IF EXISTS controlroom_online_heartbeat_idx",
            reverse_sql=(
                "CREATE INDEX IF NOT EXISTS controlroom_online_heartbeat_idx ON mitra_online_status"
                " (last_heartbeat_at) WHERE is_online"
            ),
        )
    ]
