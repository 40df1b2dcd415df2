"""Mitra activity per period: online time from the online log, offers and answers, sessions; CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse

from availability.services import mitra_set_offline, mitra_set_online
from controlroom.selectors import ACTIVITY_CSV_HEADER, mitra_activity_get, mitra_timeline_list
from mitras.models import OnlineReason
from sessions_app.models import ChatRequestNotification, ChatSession, NotificationResponse, TopicSensitivity
from tests.controlroom.support import client_for, staff

pytestmark = pytest.mark.django_db(transaction=True)

DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _at(hours: float) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours)


@pytest.fixture
def history(make_customer, make_mitra):
    """A day of one mitra: online 08-10 and 13-13:30 (stale), three offers, two sessions."""
    mitra, other = make_mitra("Fajar"), make_mitra("Gita")
    for start, end, reason in ((8, 10, OnlineReason.MANUAL), (13, 13.5, OnlineReason.STALE)):
        with time_machine.travel(_at(start), tick=False), transaction.atomic():
            mitra_set_online(mitra_id=mitra.id)
        with time_machine.travel(_at(end), tick=False), transaction.atomic():
            mitra_set_offline(mitra_id=mitra.id, reason=reason)
    customer = make_customer()
    sessions = []
    for i, (minutes, topic) in enumerate(((30, TopicSensitivity.NORMAL), (60, TopicSensitivity.SENSITIVE))):
        started = _at(8.5 + i)
        sessions.append(
            ChatSession.objects.create(
                customer=customer,
                mitra=mitra,
                status="completed",
                duration_minutes=minutes,
                topic_sensitivity=topic,
                started_at=started,
                expires_at=started + dt.timedelta(minutes=minutes),
                ended_at=started + dt.timedelta(minutes=minutes),
            )
        )
    missed = ChatSession.objects.create(
        customer=customer, mitra=other, status="completed", duration_minutes=30
    )
    declined = ChatSession.objects.create(
        customer=customer, mitra=other, status="completed", duration_minutes=30
    )
    rows = [
        (sessions[0], NotificationResponse.ACCEPTED, 10),
        (sessions[1], NotificationResponse.ACCEPTED, 30),
        (declined, NotificationResponse.DECLINED, 5),
        (missed, NotificationResponse.IGNORED, None),
    ]
    for n, (session, response, took) in enumerate(rows):
        notified = _at(8.25 + n * 0.5)
        ChatRequestNotification.objects.create(
            session=session,
            mitra=mitra,
            notified_at=notified,
            response=response,
            responded_at=notified + dt.timedelta(seconds=took) if took is not None else None,
        )
    return mitra


def test_activity_figures(history):
    activity = mitra_activity_get(mitra=history, start=DAY, end=DAY + dt.timedelta(days=1))
    assert activity.online_seconds == int(2.5 * 3600)
    assert (activity.offers, activity.accepted, activity.declined, activity.missed) == (4, 2, 1, 1)
    assert activity.acceptance_rate == pytest.approx(0.5)
    assert activity.median_response_seconds == 10
    assert (activity.sessions, activity.minutes_served, activity.sensitive_sessions) == (2, 90, 1)
    # A period cut in the middle of an online stretch counts only its part.
    part = mitra_activity_get(mitra=history, start=_at(9), end=_at(12))
    assert part.online_seconds == 3600


def test_timeline_has_reasons_and_offers(history):
    timeline = mitra_timeline_list(mitra=history, start=DAY, end=DAY + dt.timedelta(days=1))
    kinds = [(e.kind, e.detail) for e in timeline]
    assert ("offline", "Stale heartbeat") in kinds
    assert ("offer", "accepted after 10 s") in kinds and ("offer", "ignored") in kinds
    assert timeline == sorted(timeline, key=lambda e: e.at)


def test_activity_page_and_csv(history):
    client = client_for(staff("support"))
    query = {"mitra": str(history.pk), "start": "2026-11-20", "end": "2026-11-20"}
    page = client.get(reverse("admin:controlroom_activity"), query).content.decode()
    assert "Stale heartbeat" in page and "150 min" in page
    response = client.get(reverse("admin:controlroom_activity"), {**query, "format": "csv"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ACTIVITY_CSV_HEADER
    assert rows[1][1:7] == ["Fajar", str(9000), "4", "2", "1", "1"]
