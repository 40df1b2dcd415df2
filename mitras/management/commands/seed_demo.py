"""Demo data for a development system: an ops admin, two demo mitras, pricing (via migrations)."""

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mitras.models import Mitra
from mitras.services import mitra_create

DEMO_MITRAS = [("+6281100000001", "Mitra Demo Satu"), ("+6281100000002", "Mitra Demo Dua")]


class Command(BaseCommand):
    help = "Create demo accounts for development (refuses to run with DEBUG off unless --force)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo is for development; pass --force to run it anyway")
        password_file = Path(settings.BASE_DIR) / ".dev" / "ops_password"
        password_file.parent.mkdir(parents=True, exist_ok=True)
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        user_model = get_user_model()
        ops, created = user_model.objects.get_or_create(
            username="ops", defaults={"is_staff": True, "is_superuser": True}
        )
        if created or not ops.check_password(password):
            ops.set_password(password)
            ops.is_staff = ops.is_superuser = True
            ops.save()
        for phone, name in DEMO_MITRAS:
            if not Mitra.objects.filter(phone=phone).exists():
                mitra_create(phone=phone, display_name=name)
        self.stdout.write("demo accounts:")
        self.stdout.write(f"  ops admin: username 'ops', password '{password}' (kept in .dev/ops_password)")
        for phone, name in DEMO_MITRAS:
            self.stdout.write(f"  mitra {name}: phone {phone}, OTP code 000000 (dev bypass)")
        self.stdout.write(
            '  customers sign up anonymously: POST /api/shared/auth/anonymous {"call_name": "..."}'
        )
