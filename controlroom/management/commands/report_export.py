"""`manage.py report_export KIND`: the control room's reports as CSV (to --out or stdout).

Kinds: activity (every mitra, the period), hourly (paid / matched / failed / time to accept per hour,
the last --hours), audit (the audit trail in the period).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from controlroom import selectors
from controlroom.models import AuditEntry
from mitras.models import Mitra


def _day(value: str) -> dt.datetime:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time.min, tzinfo=dt.UTC)
    except ValueError as exc:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value}") from exc


class Command(BaseCommand):
    help = "Export a report as CSV: activity | hourly | audit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=("activity", "hourly", "audit"))
        parser.add_argument("--start", default=None, help="first day, UTC (default: 7 days ago)")
        parser.add_argument("--end", default=None, help="last day, UTC, inclusive (default: today)")
        parser.add_argument("--hours", type=int, default=24, help="hourly: how many hours back")
        parser.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")

    def handle(self, *args: Any, kind: str, **options: Any) -> None:
        today = timezone.now().date()
        start = _day(options["start"]) if options["start"] else _day(str(today - dt.timedelta(days=6)))
        end = (_day(options["end"]) if options["end"] else _day(str(today))) + dt.timedelta(days=1)
        if start >= end:
            raise CommandError("--start must not be after --end.")
        out: Path | None = options["out"]
        fh: Any = out.open("w", newline="", encoding="utf-8") if out else self.stdout
        try:
            rows = getattr(self, f"_{kind}")(csv.writer(fh), start, end, options["hours"])
        finally:
            if out:
                fh.close()
        self.stderr.write(f"{kind}: {rows} row(s){f' written to {out}' if out else ''}")

    def _activity(self, writer: Any, start: dt.datetime, end: dt.datetime, hours: int) -> int:
        writer.writerow(selectors.ACTIVITY_CSV_HEADER)
        total = Mitra.objects.count()
        for n, mitra in enumerate(Mitra.objects.order_by("display_name").iterator(), start=1):
            writer.writerow(selectors.mitra_activity_get(mitra=mitra, start=start, end=end).csv_row())
            if n % 100 == 0:
                self.stderr.write(f"activity: {n}/{total} mitras")
        return total

    def _hourly(self, writer: Any, start: dt.datetime, end: dt.datetime, hours: int) -> int:
        writer.writerow(["hour", "paid", "matched", "failed", "accept_p50_seconds", "accept_p90_seconds"])
        stats = selectors.hourly_stats_list(hours=hours)
        for h in stats:
            writer.writerow(
                [h.hour.isoformat(), h.paid, h.matched, h.failed, h.accept_p50 or "", h.accept_p90 or ""]
            )
        return len(stats)

    def _audit(self, writer: Any, start: dt.datetime, end: dt.datetime, hours: int) -> int:
        writer.writerow(["at", "actor", "action", "object_type", "object_id", "object", "old", "new"])
        n = 0
        for e in AuditEntry.objects.filter(at__gte=start, at__lt=end).order_by("at").iterator():
            writer.writerow(
                [
                    e.at.isoformat(),
                    e.actor_username,
                    e.action,
                    e.object_type,
                    e.object_id,
                    e.object_repr,
                    e.old,
                    e.new,
                ]
            )
            n += 1
        return n
