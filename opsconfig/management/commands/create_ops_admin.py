"""`manage.py create_ops_admin`: the first ops account of a fresh deploy (a Django superuser for the
control room at /admin/).

Non-interactive (containers, scripts): the username, email and password come from flags or from
OPS_ADMIN_USERNAME / OPS_ADMIN_EMAIL / OPS_ADMIN_PASSWORD (or --password-file, e.g. a mounted
secret). The password is never a command-line flag, so it never shows in a process list or a shell
history. With no password given, and no terminal to ask on, a random one is generated and printed
once. Interactive (a terminal, no password given): the password is asked for twice.

The password must pass the project's password validators. An existing username is an error with exit
code 2 (so scripts can tell "already there" from a failure), or a quiet success with --if-missing,
which lets a deploy run the command on every release.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

USERNAME_MAX = 150


class Command(BaseCommand):
    help = "Create the first ops (admin) account; non-interactive with flags or OPS_ADMIN_* variables."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=None, help="default: $OPS_ADMIN_USERNAME or 'ops'")
        parser.add_argument("--email", default=None, help="default: $OPS_ADMIN_EMAIL (optional)")
        parser.add_argument(
            "--password-file", default=None, help="read the password from this file (first line)"
        )
        parser.add_argument(
            "--no-input", action="store_true", help="never prompt (generate a password if none is given)"
        )
        parser.add_argument(
            "--if-missing", action="store_true", help="exit 0 without changes if the username exists"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = (options["username"] or os.environ.get("OPS_ADMIN_USERNAME") or "ops").strip()
        if not username or len(username) > USERNAME_MAX or any(c.isspace() for c in username):
            raise CommandError(f"--username: 1–{USERNAME_MAX} characters without spaces")
        email = (options["email"] or os.environ.get("OPS_ADMIN_EMAIL") or "").strip()
        if email:
            try:
                validate_email(email)
            except ValidationError as exc:
                raise CommandError(f"--email: {email!r} is not an email address") from exc

        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            if options["if_missing"]:
                self.stdout.write(f"ops account {username!r} already exists; nothing changed")
                return
            raise CommandError(f"An account named {username!r} already exists.", returncode=2)

        password, generated = self._password(options)
        candidate = user_model(username=username, email=email)
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise CommandError("password rejected: " + " ".join(exc.messages)) from exc

        try:
            with transaction.atomic():
                user_model.objects.create_superuser(username=username, email=email, password=password)
        except IntegrityError as exc:  # lost a race with another create of the same username
            if options["if_missing"]:
                self.stdout.write(f"ops account {username!r} already exists; nothing changed")
                return
            raise CommandError(f"An account named {username!r} already exists.", returncode=2) from exc

        self.stdout.write(f"created ops account {username!r} (superuser) for /admin/")
        if generated:
            self.stdout.write(f"generated password (shown once; change it after the first login): {password}")

    def _password(self, options: dict[str, Any]) -> tuple[str, bool]:
        """(password, generated?) from --password-file, $OPS_ADMIN_PASSWORD, a prompt, or random."""
        if options["password_file"]:
            try:
                lines = Path(options["password_file"]).read_text().splitlines()
            except OSError as exc:
                raise CommandError(f"--password-file: {exc.strerror or exc}") from exc
            password = lines[0] if lines else ""
            if not password:
                raise CommandError("--password-file: the file is empty")
            return password, False
        from_env = os.environ.get("OPS_ADMIN_PASSWORD", "")
        if from_env:
            return from_env, False
        if not options["no_input"] and sys.stdin.isatty():
            first = getpass.getpass("Password: ")
            if first != getpass.getpass("Password (again): "):
                raise CommandError("the two passwords differ")
            if not first:
                raise CommandError("an empty password is not allowed")
            return first, False
        return secrets.token_urlsafe(18), True
