"""The Prometheus endpoint: internal networks only, what the app records, multiprocess aggregation."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from availability.services import availability_heartbeat
from halobestie import metrics
from halobestie.exceptions import RequestTaken
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.pairing import chat_request_accept
from tests.faults.conftest import free_port
from tests.sessions_app.pairing_support import go_online, paid_session

ROOT = Path(__file__).resolve().parents[2]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_metrics_only_from_internal_networks():
    inside = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    outside = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
    assert inside.status_code == 200
    assert inside["Content-Type"].startswith("text/plain")
    text = inside.content.decode()
    for name in (
        "halobestie_offers_sent_total",
        "halobestie_webhook_to_offer_seconds_bucket",
        "halobestie_deadline_lateness_seconds",
        "halobestie_open_sockets",
        "halobestie_last_sweep_age_seconds",
    ):
        assert name in text
    assert outside.status_code == 404
    assert b"halobestie" not in outside.content


@pytest.mark.django_db(transaction=True)
def test_a_paid_blast_and_accept_are_counted(make_customer, make_mitra):
    mitras = [make_mitra(), make_mitra()]
    go_online(*mitras)
    sent, accepted, taken = (
        value("halobestie_offers_sent_total"),
        value("halobestie_offers_accepted_total"),
        value("halobestie_offers_taken_total"),
    )
    latency_count = value("halobestie_webhook_to_offer_seconds_count")
    accept_count = value("halobestie_time_to_accept_seconds_count")
    session = paid_session(make_customer())
    assert ChatSession.objects.get(pk=session.id).blast_started_at is not None
    assert value("halobestie_offers_sent_total") == sent + 2
    assert value("halobestie_webhook_to_offer_seconds_count") == latency_count + 1
    chat_request_accept(session_id=session.id, mitra_id=mitras[0].id)
    assert ChatSession.objects.get(pk=session.id).status == SessionStatus.ACTIVE
    with pytest.raises(RequestTaken):
        chat_request_accept(session_id=session.id, mitra_id=mitras[1].id)
    assert value("halobestie_offers_accepted_total") == accepted + 1
    assert value("halobestie_offers_taken_total") == taken + 1
    assert value("halobestie_time_to_accept_seconds_count") == accept_count + 1


@pytest.mark.django_db(transaction=True)
def test_heartbeats_and_valkey_fallbacks_are_counted(make_mitra, valkey_server):
    from availability.readers import find_available_mitras

    mitra = make_mitra()
    go_online(mitra)
    before = value("halobestie_heartbeats_total")
    availability_heartbeat(mitra_id=mitra.id)
    assert value("halobestie_heartbeats_total") == before + 1
    fallbacks = sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "halobestie_valkey_fallbacks"
        for s in m.samples
        if s.name.endswith("_total")
    )
    valkey_server.stop()
    assert find_available_mitras() == [mitra.id]
    after = sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "halobestie_valkey_fallbacks"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert after == fallbacks + 1


def test_observe_since_ignores_unknown_start_and_clamps_negative():
    import datetime as dt

    hist = metrics.DEADLINE_LATENESS.labels("test")
    before = value("halobestie_deadline_lateness_seconds_count", kind="test")
    metrics.observe_since(hist, None)
    now = dt.datetime.now(dt.UTC)
    metrics.observe_since(hist, now + dt.timedelta(seconds=5), now)
    assert value("halobestie_deadline_lateness_seconds_count", kind="test") == before + 1
    assert value("halobestie_deadline_lateness_seconds_bucket", kind="test", le="0.05") >= 1


def test_multiprocess_mode_sums_every_process_of_the_group(tmp_path):
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "halobestie.settings.test",
    }
    bump = "import django; django.setup(); from halobestie import metrics; metrics.OFFERS_SENT.inc(3); metrics.OPEN_SOCKETS.inc(2)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", bump], cwd=ROOT, env=env, check=True, timeout=60)
    read = (
        "import django; django.setup(); from halobestie import metrics; "
        "print(metrics.exposition(liveness=False).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", read],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert "halobestie_offers_sent_total 6.0" in out
    # open sockets are a live sum: the two processes that opened them have exited
    assert "halobestie_open_sockets 4.0" not in out


def test_worker_metrics_endpoint_is_network_gated(settings):
    port = free_port()
    server = metrics.serve_worker_metrics(port, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
        assert "halobestie_sweep_duration_seconds" in body
        settings.INTERNAL_ALLOWED_CIDRS = ["10.0.0.0/8"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert refused.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db(transaction=True)
def test_heartbeats_answered_by_the_asgi_hot_path_are_counted(make_mitra, login):
    from asgiref.sync import async_to_sync

    from availability import services
    from tests.availability.conftest import asgi_request

    mitra = make_mitra()
    services.mitra_set_online(mitra_id=mitra.id)
    services.availability_reseed(reason="test")
    before = value("halobestie_heartbeats_total")
    response = async_to_sync(asgi_request)(
        "POST", "/api/mitra/status/heartbeat", token=login(mitra).access_token
    )
    assert response.status == 200 and response.via_hot_path
    assert value("halobestie_heartbeats_total") == before + 1
