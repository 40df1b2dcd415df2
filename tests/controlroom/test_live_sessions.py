"""Live sessions: the page, reroute (a select of available mitras, then a confirmation), end and the
topic flag, each through the sessions_app services and audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from controlroom.models import AuditEntry
from sessions_app.models import ChatSession, EndedBy, SessionStatus, TopicSensitivity
from sessions_app.services.reroute import reroute_start
from tests.controlroom.support import active_session, client_for, go_online, staff

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(make_customer, make_mitra):
    first, second, offline = make_mitra("Ayu"), make_mitra("Bima"), make_mitra("Citra")
    go_online(first)
    session = active_session(make_customer(), first)
    go_online(second)
    return session, first, second, offline


def test_live_page_lists_the_session_with_remaining_time(live):
    session, _first, _, _ = live
    html = client_for(staff("support")).get(reverse("admin:controlroom_live")).content.decode()
    assert str(session.pk) in html and "Ayu" in html and "Active" in html
    assert f"{session.duration_minutes - 1} min" in html or f"{session.duration_minutes} min" in html


def test_reroute_offers_only_available_mitras_then_confirms_then_moves(live):
    session, first, second, _offline = live
    user = staff("support")
    client = client_for(user)
    url = reverse("admin:controlroom_reroute", args=[session.pk])
    form = client.get(url).content.decode()
    assert "<select" in form and "Bima" in form
    assert "Citra" not in form  # offline
    assert f'value="{first.pk}"' not in form  # already with the session

    confirm = client.post(url, {"to_mitra": str(second.pk)})
    assert "Reroute session" in confirm.content.decode() and 'name="confirm"' in confirm.content.decode()
    assert ChatSession.objects.get(pk=session.pk).mitra_id == first.pk  # nothing yet

    done = client.post(url, {"to_mitra": str(second.pk), "confirm": "yes"})
    assert done.status_code == 302
    assert ChatSession.objects.get(pk=session.pk).mitra_id == second.pk
    entry = AuditEntry.objects.get(action="session.reroute")
    assert entry.actor == user and entry.object_id == str(session.pk)
    assert entry.old == {"mitra": str(first.pk)} and entry.new == {"mitra": str(second.pk)}


def test_reroute_to_an_unavailable_mitra_is_refused_and_changes_nothing(live):
    session, first, _, offline = live
    client = client_for(staff("support"))
    response = client.post(
        reverse("admin:controlroom_reroute", args=[session.pk]),
        {"to_mitra": str(offline.pk), "confirm": "yes"},
    )
    assert response.status_code == 200  # the form again, with the select's error
    assert "Select a valid choice" in response.content.decode()
    assert ChatSession.objects.get(pk=session.pk).mitra_id == first.pk
    assert not AuditEntry.objects.exists()


def test_end_asks_first_then_closes_as_ops(live):
    session, *_ = live
    user = staff("support")
    client = client_for(user)
    url = reverse("admin:controlroom_end", args=[session.pk])
    assert "Yes, end the session" in client.get(url).content.decode()
    assert ChatSession.objects.get(pk=session.pk).status == SessionStatus.ACTIVE
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    ended = ChatSession.objects.get(pk=session.pk)
    assert (ended.status, ended.ended_by) == (SessionStatus.CLOSING, EndedBy.OPS)
    entry = AuditEntry.objects.get(action="session.end")
    assert entry.old == {"status": "active"} and entry.new == {"status": "closing"}
    # A second click is harmless and not audited twice.
    client.post(url, {"confirm": "yes"})
    assert AuditEntry.objects.filter(action="session.end").count() == 1


def test_topic_flag_change_is_audited(live):
    session, *_ = live
    client = client_for(staff("support"))
    url = reverse("admin:controlroom_topic", args=[session.pk])
    client.post(url, {"topic_sensitivity": TopicSensitivity.SENSITIVE})
    assert ChatSession.objects.get(pk=session.pk).topic_sensitivity == TopicSensitivity.SENSITIVE
    entry = AuditEntry.objects.get(action="session.topic")
    assert entry.old == {"topic_sensitivity": "normal"} and entry.new == {"topic_sensitivity": "sensitive"}


def test_finance_cannot_see_or_operate_live_sessions(live):
    session, _, second, _ = live
    client = client_for(staff("finance"))
    assert client.get(reverse("admin:controlroom_live")).status_code == 403
    response = client.post(
        reverse("admin:controlroom_reroute", args=[session.pk]),
        {"to_mitra": str(second.pk), "confirm": "yes"},
    )
    assert response.status_code == 403
    assert (
        client.post(reverse("admin:controlroom_end", args=[session.pk]), {"confirm": "yes"}).status_code
        == 403
    )
    assert ChatSession.objects.get(pk=session.pk).status == SessionStatus.ACTIVE


def test_the_session_list_reroute_action_is_audited_too(live):
    session, first, second, _ = live
    client = client_for(staff("admin", "ops-admin"))
    client.post(
        reverse("admin:sessions_app_chatsession_changelist"),
        {"action": "reroute_sessions", "_selected_action": [str(session.pk)], "to_mitra": str(second.pk)},
    )
    assert ChatSession.objects.get(pk=session.pk).mitra_id == second.pk
    entry = AuditEntry.objects.get(action="session.reroute")
    assert entry.old == {"mitra": str(first.pk)} and entry.new == {"mitra": str(second.pk)}


def test_topic_flag_of_a_searching_session_is_refused(make_customer):
    from tests.sessions_app.pairing_support import paid_session, seed  # reason: test-local set-up

    seed()
    session = paid_session(make_customer())  # nobody online: searching, no mitra
    client = client_for(staff("support"))
    response = client.post(
        reverse("admin:controlroom_topic", args=[session.pk]), {"topic_sensitivity": "sensitive"}, follow=True
    )
    assert "has none yet" in response.content.decode()
    assert ChatSession.objects.get(pk=session.pk).topic_sensitivity == TopicSensitivity.NORMAL
    assert not AuditEntry.objects.exists()


def test_a_rerouting_session_is_listed_and_ops_can_end_it(live):
    """A lost mitra (docs/reliability.md "Lost mitra"): listed as rerouting with no mitra; "end"
    completes it at once as ops (no mitra to say goodbye), audited."""
    session, first, _second, _ = live
    assert reroute_start(session_id=session.pk, reason="deactivated", mitra_id=first.pk) is not None
    client = client_for(staff("support"))
    html = client.get(reverse("admin:controlroom_live")).content.decode()
    assert str(session.pk) in html and "Rerouting" in html
    assert reverse("admin:controlroom_end", args=[session.pk]) in html

    assert (
        client.post(reverse("admin:controlroom_end", args=[session.pk]), {"confirm": "yes"}).status_code
        == 302
    )
    ended = ChatSession.objects.get(pk=session.pk)
    assert (ended.status, ended.ended_by) == (SessionStatus.COMPLETED, EndedBy.OPS)
    entry = AuditEntry.objects.get(action="session.end")
    assert entry.old == {"status": "rerouting"} and entry.new == {"status": "completed"}
