"""Helpers for the clock, extension and lifecycle tests.

- `EventListener`: subscribes to users' groups on the real channel layer (this run's Valkey) from its
  own thread and event loop, so synchronous tests can run services and tasks and then read what the
  users' sockets would have received. `sync()` publishes a marker and waits for it: pub/sub keeps
  order, so every event sent before the marker has arrived when it returns (exact counts, no sleeps).
- `published`: every Celery task published (name, args, eta) through the real broker connection.
- `active_session`: an active session built directly with the ORM for a given customer and mitra;
  `build_session` (fixture) makes both and a consumed payment. `ActiveChat`: such a session with both
  sides logged in (also used by the gateway and message tests).
- `deliver`: a task delivered the way a worker would (Celery's apply: the real task with its request).
- The fixtures are imported by each test module (`from tests.sessions_app.clock_support import *`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from celery.signals import before_task_publish
from channels.layers import get_channel_layer
from django.utils import timezone

from accounts.models import Customer
from availability import store
from availability.selectors import mitra_effective_load_orm
from availability.services import availability_reseed
from halobestie import realtime
from mitras.models import Mitra
from opsconfig.services import config_invalidate_local, config_update
from payments.models import PaymentMethod, PaymentRequest, PaymentStatus, PricingTier
from sessions_app.models import ChatSession, SessionStatus
from tests.sessions_app.pairing_support import go_online

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
TIER_PRICES = {15: 30_000, 30: 60_000}


def seconds(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)


class EventListener:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.channels: dict[str, str] = {}
        self.pumps: list[Any] = []

    def _run(self, coro: Any, timeout: float = 5.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _pump(self, key: str, channel: str) -> None:
        while True:
            message = await self.layer.receive(channel)
            if message.get("type") == "hb.event":
                self.received[key].append(message["event"])

    def join(self, user_type: str, user_id: Any) -> None:
        key = f"{user_type}:{user_id}"

        async def subscribe() -> str:
            channel: str = await self.layer.new_channel()
            await self.layer.group_add(realtime.user_group(user_type, user_id), channel)
            return channel

        channel = self._run(subscribe())
        self.channels[key] = channel
        self.received[key] = []
        self.pumps.append(asyncio.run_coroutine_threadsafe(self._pump(key, channel), self.loop))
        self.sync()

    def sync(self, timeout: float = 5.0) -> None:
        """Publish a marker to every joined user and wait until each has received it."""
        markers = {}
        for key in self.channels:
            user_type, user_id = key.split(":", 1)
            marker = uuid.uuid4().hex
            markers[key] = marker
            realtime.send_to_user(user_type, user_id, {"type": "_marker", "marker": marker})
        deadline = time.monotonic() + timeout
        for key, marker in markers.items():
            while not any(e.get("marker") == marker for e in self.received[key]):
                if time.monotonic() > deadline:
                    raise AssertionError(f"listener for {key} did not receive its marker")
                time.sleep(0.005)
            self.received[key] = [e for e in self.received[key] if e.get("type") != "_marker"]

    def events(self, user_type: str, user_id: Any, kind: str | None = None) -> list[dict[str, Any]]:
        """Events received so far (call sync() first)."""
        got = self.received.get(f"{user_type}:{user_id}", [])
        return [e for e in got if kind is None or e.get("type") == kind]

    def kinds(self, user_type: str, user_id: Any) -> list[str]:
        return [str(e.get("type")) for e in self.events(user_type, user_id)]

    def clear(self) -> None:
        for key in self.received:
            self.received[key] = []

    def close(self) -> None:
        for pump in self.pumps:
            pump.cancel()

        async def unsubscribe() -> None:
            for key, channel in self.channels.items():
                user_type, user_id = key.split(":", 1)
                await self.layer.group_discard(realtime.user_group(user_type, user_id), channel)
            await self.layer.flush()

        try:
            self._run(unsubscribe())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


@pytest.fixture
def listener() -> Iterator[EventListener]:
    holder = EventListener()
    try:
        yield holder
    finally:
        holder.close()


class Published:
    """Tasks published to the broker while the fixture is active: (name, args, eta)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, list[Any], dt.datetime | None]] = []
        # (name, kwargs) of every task, for the ones sent with keyword arguments.
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def record(self, sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
        headers = headers or {}
        eta = headers.get("eta")
        args = list(body[0]) if isinstance(body, (list, tuple)) and body else []
        kwargs = dict(body[1]) if isinstance(body, (list, tuple)) and len(body) > 1 and body[1] else {}
        self.calls.append((str(headers.get("task") or sender), kwargs))
        self.items.append(
            (str(headers.get("task") or sender), args, dt.datetime.fromisoformat(eta) if eta else None)
        )

    def of(self, task_name: str, object_id: Any = None) -> list[dt.datetime | None]:
        return [
            eta
            for name, args, eta in self.items
            if name == task_name and (object_id is None or args == [str(object_id)])
        ]

    def clear(self) -> None:
        self.items.clear()
        self.calls.clear()


@pytest.fixture
def published() -> Iterator[Published]:
    holder = Published()
    before_task_publish.connect(holder.record, weak=False)
    try:
        yield holder
    finally:
        before_task_publish.disconnect(holder.record)


@pytest.fixture
def clock() -> Iterator[Any]:
    """Time frozen at T0; move it with clock.move_to(...) or clock.shift(...)."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def catalog(transactional_db: None) -> dict[int, PricingTier]:
    PaymentMethod.objects.get_or_create(
        code="qris", defaults={"name": "QRIS", "group": "qris", "min_amount": 1_500}
    )
    tiers = {}
    for minutes, price in TIER_PRICES.items():
        tier, _ = PricingTier.objects.update_or_create(
            mode="chat", duration_minutes=minutes, defaults={"price": price, "is_active": True}
        )
        tiers[minutes] = tier
    return tiers


def set_config(**changes: Any) -> None:
    config_update(**changes)
    config_invalidate_local()


def active_session(
    *,
    customer: Customer,
    mitra: Mitra,
    minutes: int = 30,
    started_at: dt.datetime | None = None,
    **fields: Any,
) -> ChatSession:
    """An active ChatSession of `minutes` from `started_at` (default now), built with the ORM only."""
    start = started_at or timezone.now()
    return ChatSession.objects.create(
        customer=customer,
        mitra=mitra,
        status=SessionStatus.ACTIVE,
        duration_minutes=minutes,
        started_at=start,
        expires_at=start + dt.timedelta(minutes=minutes),
        **fields,
    )


@pytest.fixture
def build_session(catalog: Any, make_customer: Any, make_mitra: Any) -> Callable[..., Any]:
    """build_session(minutes=30, started_at=now, mitra=None) -> an active ChatSession (ORM only) with
    a fresh customer and its consumed payment."""

    def factory(
        *, minutes: int = 30, started_at: dt.datetime | None = None, mitra: Mitra | None = None, **fields: Any
    ) -> ChatSession:
        start = started_at or timezone.now()
        customer = make_customer(
            call_name=f"Bunga{uuid.uuid4().hex[:4]}",
            phone=f"+62811{uuid.uuid4().int % 10**8:08d}",
            email="bunga@example.com",
        )
        payment = PaymentRequest.objects.create(
            customer=customer,
            amount=TIER_PRICES.get(minutes, 10_000),
            minutes=minutes,
            mode="chat",
            method_id="qris",
            status=PaymentStatus.CONSUMED,
            expires_at=start + dt.timedelta(minutes=20),
            confirmed_at=start,
        )
        return active_session(
            customer=customer,
            mitra=mitra or make_mitra(),
            minutes=minutes,
            started_at=start,
            payment_request=payment,
            **fields,
        )

    return factory


class ActiveChat:
    """An active session with both sides logged in (`login` and `api` are the conftest fixtures;
    subclasses add the routes their tests call through `api`)."""

    def __init__(self, session: ChatSession, login: Any, api: Any = None) -> None:
        self.session: Any = session
        self.api = api
        self.customer_token: str = login(session.customer).access_token
        self.mitra_token: str = login(session.mitra).access_token

    @property
    def id(self) -> uuid.UUID:
        return self.session.id

    @property
    def customer(self) -> Customer:
        return self.session.customer  # type: ignore[no-any-return]

    @property
    def mitra(self) -> Mitra:
        return self.session.mitra  # type: ignore[no-any-return]

    def reload(self) -> Any:
        return refresh(self.session)


def deliver(task: Any, object_id: Any) -> bool:
    """Deliver a task the way a worker would (Celery's apply: the real task with its request)."""
    return bool(task.apply(args=[str(object_id)]).get())


def joined(listener: EventListener, session: ChatSession) -> EventListener:
    """The listener, joined to the session's customer and mitra."""
    listener.join("customer", session.customer_id)
    listener.join("mitra", session.mitra_id)
    return listener


def seed_mirror() -> None:
    availability_reseed(reason="test")


def mirrored_capacity(mitra_id: Any) -> int:
    return store.capacity_read(mitra_id)


def postgres_capacity(mitra_id: Any) -> int:
    """What the mirror must hold: the load, plus the wrap-up cooldown's block (docs/matching.md)."""
    return mitra_effective_load_orm(mitra_id=mitra_id)


def refresh(session: Any) -> Any:
    session.refresh_from_db()
    return session


__all__ = [
    "T0",
    "ActiveChat",
    "EventListener",
    "active_session",
    "build_session",
    "catalog",
    "clock",
    "deliver",
    "go_online",
    "joined",
    "listener",
    "mirrored_capacity",
    "postgres_capacity",
    "published",
    "refresh",
    "seconds",
    "seed_mirror",
    "set_config",
]
