"""mitra_online_status is stored with fillfactor 70: every row is rewritten every two heartbeat-mirror
cycles and on each online/offline, and an update stays HOT (no index write, the row's new version on
its own page) only when its page has room. At 100 the pages filled up and whether an update was HOT
depended on when autovacuum last ran: the 100k mirror cycle measured 171 ms or 282 ms of SQL on the same
data (docs/availability.md "Sweep and mirror costs"). New pages follow the setting at once; existing
ones as they are rewritten (or at once with `VACUUM FULL mitra_online_status` in a quiet minute)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("mitras", "0005_online_status_no_is_online_index"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE mitra_online_status SET (fillfactor = 70)",
            reverse_sql="ALTER TABLE mitra_online_status RESET (fillfactor)",
        ),
    ]
