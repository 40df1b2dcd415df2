"""`manage.py mitras_import_csv FILE`: create mitras in bulk (columns: phone, display_name).

Each row goes through mitras' `mitra_create` service in its own transaction, so one bad row does not
undo the others. A phone that already belongs to a mitra is skipped (re-running the file is safe).
Progress every --every rows; bad rows are listed with their line number and make the exit code 1.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.phone import InvalidPhone, phone_normalize
from mitras.models import Mitra
from mitras.services import mitra_create

DISPLAY_NAME_MAX = 60


class Command(BaseCommand):
    help = "Create mitras from a CSV file with the columns phone, display_name (existing phones skipped)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="check every row, create nothing")
        parser.add_argument("--every", type=int, default=100, help="progress line every N rows")

    def handle(self, *args: Any, file: Path, dry_run: bool, every: int, **options: Any) -> None:
        try:
            with file.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or not {"phone", "display_name"} <= set(reader.fieldnames):
                    raise CommandError("The CSV needs a header row with the columns phone, display_name.")
                rows = list(enumerate(reader, start=2))
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        created = skipped = 0
        errors: list[str] = []
        for n, (line, row) in enumerate(rows, start=1):
            name = (row.get("display_name") or "").strip()
            try:
                phone = phone_normalize(row.get("phone") or "")
            except InvalidPhone as exc:
                errors.append(f"line {line}: {exc}")
                continue
            if not name or len(name) > DISPLAY_NAME_MAX:
                errors.append(f"line {line}: display_name must be 1 to {DISPLAY_NAME_MAX} characters")
                continue
            if Mitra.objects.filter(phone=phone).exists():
                skipped += 1
            elif not dry_run:
                with transaction.atomic():
                    mitra_create(phone=phone, display_name=name)
                created += 1
            else:
                created += 1
            if n % every == 0:
                self.stdout.write(
                    f"{n}/{len(rows)} rows: {created} created, {skipped} skipped, {len(errors)} bad"
                )
        verb = "would be created" if dry_run else "created"
        self.stdout.write(f"{len(rows)} rows: {created} {verb}, {skipped} already there, {len(errors)} bad")
        for error in errors:
            self.stderr.write(error)
        if errors:
            raise CommandError(f"{len(errors)} row(s) not imported (listed above).")
