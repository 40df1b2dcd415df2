"""`manage.py create_mitra --phone 0812… --name "Mitra Ayu"`: create a mitra ops can hand a phone login.

Creates the Mitra and its MitraOnlineStatus row (offline) in one transaction and prints the new id.
A phone that already belongs to a mitra is an error that names the existing mitra, so scripts can
tell "already there" (exit code 2) from other failures.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from accounts.phone import InvalidPhone, phone_normalize
from mitras.models import Mitra
from mitras.services import mitra_create

DISPLAY_NAME_MAX = 60


class Command(BaseCommand):
    help = "Create a mitra account (phone login) and print its id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phone", required=True, help="Indonesian mobile number: 08…, 628… or +628…")
        parser.add_argument("--name", required=True, help="Display name shown to customers (max 60).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            phone = phone_normalize(options["phone"])
        except InvalidPhone as exc:
            raise CommandError(f"--phone: {exc}") from exc
        name = " ".join(str(options["name"]).split())
        if not name or len(name) > DISPLAY_NAME_MAX or "\x00" in name:
            raise CommandError(f"--name: must be 1–{DISPLAY_NAME_MAX} characters")
        existing = Mitra.objects.filter(phone=phone).first()
        if existing is not None:
            raise CommandError(f"A mitra with this phone already exists: {existing.id}", returncode=2)
        try:
            mitra = mitra_create(phone=phone, display_name=name)
        except IntegrityError as exc:
            # Lost a race with another create for the same phone.
            existing = Mitra.objects.filter(phone=phone).first()
            raise CommandError(
                f"A mitra with this phone already exists: {existing.id if existing else '?'}", returncode=2
            ) from exc
        self.stdout.write(str(mitra.id))
