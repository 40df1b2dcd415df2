"""Shared helpers for checkout and pairing tests (imported by test_checkout.py and test_pairing*.py).

Mitras are made available through the availability services (Postgres + the Valkey mirror after
commit), so pairing sees them through the real readers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

from availability.services import availability_heartbeat, mitra_set_online
from halobestie.realtime import user_group
from mitras.models import Mitra
from opsconfig.services import config_update
from payments.catalog import seed_catalog
from payments.models import PaymentMethod, PaymentRequest, PricingTier
from payments.services import payment_request_confirm
from sessions_app.models import ChatSession
from sessions_app.services.checkout import checkout_create

# Today's blast (issue 4) as a configuration of the matching rules (docs/matching.md "Queue off"):
# no queue, one wave to everyone (K ≥ the pool), no second wave before the timeout, offers live
# until the deadline, no pause, no cooldown. The issue-4 tests run with it and show that it is the
# old behaviour exactly; tests/sessions_app/test_matching*.py run the defaults.
BLAST_CONFIG = {
    "pairing_queue_enabled": False,
    "pairing_wave_size": 1000,
    "pairing_wave_interval_seconds": 600,
    "pairing_offer_window_seconds": 120,
    "missed_offers_pause_after": 0,
    "mitra_cooldown_seconds": 0,
}


def use_blast_config() -> None:
    config_update(**BLAST_CONFIG)


def seed() -> None:
    """The launch catalog (a transactional test's flush removes the migration's rows)."""
    seed_catalog(PricingTier, PaymentMethod)


def go_online(*mitras: Mitra) -> None:
    """Online with a fresh heartbeat, committed and mirrored (callers outside a test transaction, or
    inside django_capture_on_commit_callbacks(execute=True))."""
    for mitra in mitras:
        with transaction.atomic():
            mitra_set_online(mitra_id=mitra.id)
        availability_heartbeat(mitra_id=mitra.id)


def paid_session(
    customer: Any, *, minutes: int = 30, targeted_mitra_id: uuid.UUID | None = None
) -> ChatSession:
    """Create and confirm a payment; returns the searching session (pairing runs after commit)."""
    payment = checkout_create(
        customer_id=customer.id,
        mode="chat",
        duration_minutes=minutes,
        method="qris",
        targeted_mitra_id=targeted_mitra_id,
    )
    payment_request_confirm(payment_request_id=payment.id)
    return ChatSession.objects.get(payment_request=payment)


def payment_of(session: ChatSession) -> PaymentRequest:
    assert session.payment_request_id is not None
    return PaymentRequest.objects.get(pk=session.payment_request_id)


class Listener:
    """Channel-layer subscribers on users' groups: what their sockets would receive (real layer)."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channels: dict[str, str] = {}

    async def join(self, user_type: str, user_id: uuid.UUID) -> None:
        channel = await self.layer.new_channel()
        await self.layer.group_add(user_group(user_type, user_id), channel)
        self.channels[f"{user_type}:{user_id}"] = channel

    async def next(self, user_type: str, user_id: uuid.UUID, timeout: float = 3.0) -> dict[str, Any]:
        message = await asyncio.wait_for(
            self.layer.receive(self.channels[f"{user_type}:{user_id}"]), timeout=timeout
        )
        return message["event"]  # type: ignore[no-any-return]

    async def until(
        self,
        user_type: str,
        user_id: uuid.UUID,
        match: Callable[[dict[str, Any]], bool],
        timeout: float = 3.0,
    ) -> dict[str, Any]:
        """The first event that matches, skipping others (events arrive in order per publisher)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            event = await self.next(user_type, user_id, timeout=max(0.05, remaining))
            if match(event):
                return event

    async def close(self) -> None:
        for key, channel in self.channels.items():
            user_type, user_id = key.split(":", 1)
            await self.layer.group_discard(user_group(user_type, user_id), channel)
        await self.layer.flush()
