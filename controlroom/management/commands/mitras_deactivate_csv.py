"""`manage.py mitras_deactivate_csv FILE`: deactivate mitras in bulk (a column phone or id).

Each goes through mitras' `mitra_deactivate` service (offline, logins revoked, sockets closed) and is
audited as done by the "system" actor (or --actor USERNAME). Already-deactivated mitras are counted
and left alone; unknown ones are listed and make the exit code 1.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.phone import InvalidPhone, phone_normalize
from controlroom.audit import audit_record
from mitras.models import Mitra
from mitras.services import mitra_deactivate


class Command(BaseCommand):
    help = "Deactivate the mitras listed in a CSV file (a column phone or id)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--actor", default=None, help="the staff username recorded in the audit trail")
        parser.add_argument("--every", type=int, default=100, help="progress line every N rows")

    def _find(self, row: dict[str, str]) -> Mitra | None:
        if row.get("id"):
            try:
                return Mitra.objects.filter(pk=uuid.UUID(row["id"].strip())).first()
            except ValueError:
                return None
        try:
            return Mitra.objects.filter(phone=phone_normalize(row.get("phone") or "")).first()
        except InvalidPhone:
            return None

    def handle(self, *args: Any, file: Path, actor: str | None, every: int, **options: Any) -> None:
        user = None
        if actor:
            user = get_user_model().objects.filter(username=actor).first()
            if user is None:
                raise CommandError(f"No staff user {actor!r}.")
        try:
            with file.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or not ({"phone", "id"} & set(reader.fieldnames)):
                    raise CommandError("The CSV needs a header row with a column phone or id.")
                rows = list(enumerate(reader, start=2))
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        done = already = 0
        errors: list[str] = []
        for n, (line, row) in enumerate(rows, start=1):
            mitra = self._find(row)
            if mitra is None:
                errors.append(f"line {line}: no such mitra")
            elif not mitra.is_active:
                already += 1
            else:
                with transaction.atomic():
                    mitra_deactivate(mitra_id=mitra.pk)
                    audit_record(
                        actor=user,
                        action="mitra.deactivate",
                        obj=mitra,
                        old={"is_active": True},
                        new={"is_active": False},
                    )
                done += 1
            if n % every == 0:
                self.stdout.write(
                    f"{n}/{len(rows)} rows: {done} deactivated, {already} already, {len(errors)} bad"
                )
        self.stdout.write(
            f"{len(rows)} rows: {done} deactivated, {already} already deactivated, {len(errors)} bad"
        )
        for error in errors:
            self.stderr.write(error)
        if errors:
            raise CommandError(f"{len(errors)} row(s) not found (listed above).")
