"""Rebuild the Valkey availability mirror from Postgres (runbook: docs/runbooks/valkey-outage.md)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from availability import services, store


class Command(BaseCommand):
    help = (
        "Rebuild the online mitras (heartbeats) / mitras:deactivated / capacities / ready set from Postgres."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            token = store.reseed_lock_acquire(ttl_seconds=services.RESEED_LOCK_SECONDS)
        except store.StoreUnavailable as exc:
            raise CommandError("Valkey is unreachable; nothing was changed.") from exc
        if token is None:
            raise CommandError("Another rebuild is running (lock held); try again in a minute.")
        try:
            result = services.availability_reseed(
                reason="command", progress=lambda msg: self.stdout.write(f"  {msg}")
            )
        except store.StoreUnavailable as exc:
            raise CommandError("Valkey became unreachable during the rebuild; run it again.") from exc
        finally:
            store.reseed_lock_release(token)
        self.stdout.write(
            self.style.SUCCESS(
                f"done in {time.monotonic() - started:.2f}s: {result.online} online "
                f"({result.ready} available), {result.deactivated} deactivated"
            )
        )
