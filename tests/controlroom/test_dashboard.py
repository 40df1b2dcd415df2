"""The dashboard landing page, its JSON endpoint and the hourly charts, over the real services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from availability import store
from availability.services import availability_heartbeat
from controlroom.selectors import hourly_stats_list
from halobestie.valkey import get_valkey
from opsconfig.services import config_get
from payments.models import PaymentRequest, PaymentStatus, RefundCase, RefundStatus
from payments.services import payment_request_confirm
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.checkout import checkout_create
from sessions_app.services.pairing import pairing_cancel
from tests.controlroom.support import active_session, client_for, go_online, staff

pytestmark = pytest.mark.django_db(transaction=True)


def test_dashboard_is_the_landing_page_and_counts_follow_a_session(make_customer, make_mitra):
    mitra = make_mitra()
    go_online(mitra)
    client = client_for(staff("support"))

    page = client.get(reverse("admin:index"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="cr-dashboard"' in html and "controlroom/dashboard.js" in html
    assert "<svg" in html and "cdn" not in html.lower()

    before = client.get(reverse("admin:controlroom_dashboard_json")).json()
    assert before["mitras"]["online"] == 1 and before["mitras"]["available"] == 1
    assert before["mitras_source"] == "valkey"
    assert before["sessions"]["active"] == 0
    assert before["refund_cases_waiting"] == 0 and before["queued"] == 0

    session = active_session(make_customer(), mitra)
    after = client.get(reverse("admin:controlroom_dashboard_json")).json()
    assert after["sessions"]["active"] == 1
    at_capacity = config_get().max_customers_per_mitra == 1
    assert after["mitras"]["busy"] == (1 if at_capacity else 0)
    assert after["mitras"]["available"] == (0 if at_capacity else 1)
    assert after["today_sessions"] == 1
    assert session.payment_request_id is not None
    consumed = PaymentRequest.objects.get(pk=session.payment_request_id)
    assert consumed.status == PaymentStatus.CONSUMED
    assert after["today_revenue"] == consumed.amount


def test_queued_requests_and_refund_cases_waiting_are_counted(make_customer):
    """Nobody online: a paid request waits in matching's queue; cancelled, it becomes a refund case."""
    client = client_for(staff("finance"))
    customer = make_customer()
    payment = checkout_create(customer_id=customer.id, mode="chat", duration_minutes=15, method="qris")
    payment_request_confirm(payment_request_id=payment.id)
    session = ChatSession.objects.get(payment_request_id=payment.id)
    assert session.status == SessionStatus.SEARCHING and session.queued_at is not None

    data = client.get(reverse("admin:controlroom_dashboard_json")).json()
    assert (data["queued"], data["refund_cases_waiting"]) == (1, 0)

    pairing_cancel(session_id=session.id, customer_id=customer.id)
    data = client.get(reverse("admin:controlroom_dashboard_json")).json()
    assert (data["queued"], data["refund_cases_waiting"]) == (0, 1)
    assert RefundCase.objects.get(payment_request_id=payment.id).status == RefundStatus.PENDING_REVIEW
    page = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:payments_refundcase_changelist") in page


def test_json_says_postgres_when_valkey_is_down(make_mitra, valkey_server):
    mitra = make_mitra()
    go_online(mitra)
    client = client_for(staff("support"))
    valkey_server.stop()
    try:
        data = client.get(reverse("admin:controlroom_dashboard_json")).json()
    finally:
        valkey_server.start()
    assert data["mitras_source"] == "postgres"
    assert data["mitras"]["online"] == 1


def test_stale_and_busy_mitras(make_customer, make_mitra):
    fresh, stale = make_mitra(), make_mitra()
    go_online(fresh, stale)
    from mitras.models import MitraOnlineStatus  # reason: test-local model import for the set-up

    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    MitraOnlineStatus.objects.filter(mitra=stale).update(last_heartbeat_at=an_hour_ago)
    get_valkey().zadd(store.HEARTBEATS, {str(stale.id): an_hour_ago.timestamp()}, xx=True)
    get_valkey().zadd(store.READY, {str(stale.id): an_hour_ago.timestamp()}, xx=True)
    data = client_for(staff(None)).get(reverse("admin:controlroom_dashboard_json")).json()
    assert data["mitras"]["stale"] == 1
    assert data["mitras"]["available"] == 1
    availability_heartbeat(mitra_id=stale.id)


def test_hourly_stats_count_paid_matched_failed_and_time_to_accept(make_customer, make_mitra):
    mitra, other = make_mitra(), make_mitra()
    go_online(mitra, other)
    session = active_session(make_customer(), mitra)
    assert session.started_at is not None
    ChatSession.objects.filter(pk=session.pk).update(
        blast_started_at=session.started_at - dt.timedelta(seconds=20)
    )
    failed = active_session(make_customer("Melati"), other)
    ChatSession.objects.filter(pk=failed.pk).update(status=SessionStatus.NO_MITRA, started_at=None)
    hours = hourly_stats_list()
    assert len(hours) == 24
    last = hours[-1]
    assert (last.paid, last.matched, last.failed) == (2, 1, 1)
    assert last.accept_p50 == pytest.approx(20, abs=1)
    assert sum(h.paid for h in hours[:-1]) == 0


def test_dashboard_json_needs_the_permission(db):
    from django.contrib.auth import get_user_model  # reason: test-local

    plain = get_user_model().objects.create_user("plain", "p@example.invalid", "x", is_staff=True)
    client = client_for(plain)
    assert client.get(reverse("admin:controlroom_dashboard_json")).status_code == 403
    assert 'id="cr-dashboard"' not in client.get(reverse("admin:index")).content.decode()


def test_case_queues_of_other_apps_are_linked_when_present_and_permitted(db, monkeypatch):
    from controlroom import views  # reason: test-local, to point the case list at an app that exists

    monkeypatch.setattr(views, "CASE_APPS", ("payments",))
    finance = client_for(staff("finance")).get(reverse("admin:index")).content.decode()
    assert reverse("admin:payments_pricingtier_changelist") in finance.split('id="cr-charts"')[0]
    support = client_for(staff("support")).get(reverse("admin:index")).content.decode()
    assert reverse("admin:payments_pricingtier_changelist") not in support
