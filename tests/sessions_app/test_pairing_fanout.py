"""A blast to 300 mitras loses nothing on the configured channel layer (pub/sub on Valkey).

The receivers are channel-layer group members subscribed exactly as the gateway subscribes a mitra's
socket (group `user.mitra.<id>`); the blast runs in another thread like another server instance.
docs/performance.md (pitfall 3) records the core layer at default capacity silently drop 20-66 % of such a fan-out.
"""

from __future__ import annotations

import asyncio

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import connections
from django.utils import timezone

from availability.services import availability_reseed
from halobestie.gateway.layer import FanoutPubSubChannelLayer
from mitras.models import Mitra, MitraOnlineStatus
from sessions_app.models import ChatRequestNotification
from tests.db_indexes import foreign_keys, index_columns, redundant_indexes
from tests.sessions_app.pairing_support import Listener, paid_session, seed

# Issue 4's blast-to-all: the matching rules configured as the old blast (pairing_support.BLAST_CONFIG).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("blast_config")]

FANOUT = 300


def test_the_configured_layer_is_pub_sub():
    # The pub/sub layer with the instance fan-out (halobestie.gateway.layer).
    assert (
        settings.CHANNEL_LAYERS["default"]["BACKEND"] == "halobestie.gateway.layer.FanoutPubSubChannelLayer"
    )
    assert issubclass(FanoutPubSubChannelLayer, RedisPubSubChannelLayer)


async def test_blast_to_300_mitras_delivers_every_offer(make_customer):
    def prepare():
        seed()
        now = timezone.now()
        mitras = Mitra.objects.bulk_create(
            [Mitra(display_name=f"M{i}", phone=f"+6281300{i:06d}") for i in range(FANOUT)]
        )
        MitraOnlineStatus.objects.bulk_create(
            [
                MitraOnlineStatus(mitra=m, is_online=True, last_online_at=now, last_heartbeat_at=now)
                for m in mitras
            ]
        )
        availability_reseed(reason="test")
        return [m.id for m in mitras], make_customer("Bunga")

    mitra_ids, customer = await asyncio.to_thread(_with_connection_closed(prepare))
    listener = Listener()
    try:
        for mitra_id in mitra_ids:
            await listener.join("mitra", mitra_id)
        session = await asyncio.to_thread(_with_connection_closed(lambda: paid_session(customer)))
        received = await asyncio.gather(*(listener.next("mitra", m, timeout=10) for m in mitra_ids))
    finally:
        await listener.close()
    assert len(received) == FANOUT
    assert {frame["type"] for frame in received} == {"chat_request"}
    assert {frame["session_id"] for frame in received} == {str(session.id)}
    count = await asyncio.to_thread(
        _with_connection_closed(lambda: ChatRequestNotification.objects.filter(session=session).count())
    )
    assert count == FANOUT


def _with_connection_closed(fn):
    def call():
        try:
            return fn()
        finally:
            connections.close_all()

    return call


def test_offer_rows_write_no_redundant_index_and_both_keys_stay_indexed():
    """Every offer row of a blast writes each index of its table: no index may be a prefix of
    another, and each key (the foreign keys' checks, the lookups by session or by mitra) still
    leads one."""
    table = ChatRequestNotification._meta.db_table
    assert redundant_indexes(table) == []
    assert {"session_id", "mitra_id"} <= {index[0] for index in index_columns(table)}
    assert len(foreign_keys(table)) == 2  # both keys keep their constraint
