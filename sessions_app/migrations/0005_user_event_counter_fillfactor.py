"""Storage only (no model change): leave half of each user-event counter page free.

Every recorded event bumps its user's counter row (a 10,000-mitra blast bumps 10,000 rows in one
statement). With free room on the page Postgres updates the row in place (a HOT update: `seq` is in
no index), so the bump writes no index entries; at the default fillfactor 100 each bump also wrote
both indexes. Measured at 10,000 recipients: the counter part of the record ~125–185 → ~50–85 ms
(docs/performance.md "Blast to 10,000"). Pages written before this migration keep their layout
until the table is rewritten (VACUUM FULL); new pages use it at once.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0004_lost_mitra_reroute")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE sessions_app_usereventcounter SET (fillfactor = 50)",
            reverse_sql="ALTER TABLE sessions_app_usereventcounter RESET (fillfactor)",
        )
    ]
