"""Privacy (docs/care.md): export, account erase (API and admin), transcripts anonymised, retention."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuthSession, Customer
from care.models import AuditEntry, CaseStatus, Feedback, MitraNote, Report
from care.privacy import care_retention_run
from care.tasks import care_sweep
from halobestie.beat import schedules
from sessions_app.models import ChatMessage, ChatSession, SessionStatus, UserEvent
from tests.care.support import finish, matched_session
from tests.conftest import ApiClient
from tests.sessions_app.pairing_support import go_online, seed

pytestmark = pytest.mark.django_db(transaction=True)

PHONE, EMAIL = "+6281211112222", "melati@example.com"


@pytest.fixture
def world(make_customer: Any, make_mitra: Any, login: Any) -> dict[str, Any]:
    seed()
    customer = make_customer("Melati", phone=PHONE, email=EMAIL, is_anonymous=False)
    sari = make_mitra("Sari")
    go_online(sari)
    return {
        "customer": customer,
        "sari": sari,
        "c": login(customer).access_token,
        "m": login(sari).access_token,
    }


def _ended_with_history(world: dict[str, Any], api: ApiClient) -> ChatSession:
    session = matched_session(world["customer"], world["sari"])
    ChatMessage.objects.create(
        session=session, sender="customer", client_id="1", text=f"Aku Melati, nomorku {PHONE}, email {EMAIL}"
    )
    ChatMessage.objects.create(
        session=session, sender="mitra", client_id="2", text="Halo Melati, aku dengar kamu"
    )
    finish(session)
    ChatSession.objects.filter(pk=session.pk).update(ended_at=timezone.now())
    api.post(
        f"/api/client/chat/sessions/{session.id}/feedback",
        {"rating": 5, "comment": "Sari baik"},
        token=world["c"],
    )
    api.post(
        f"/api/mitra/chat/sessions/{session.id}/note", {"text": "Melati kerja di bank"}, token=world["m"]
    )
    api.post(
        f"/api/shared/chat/sessions/{session.id}/report",
        {"reason": "other", "details": "tes"},
        token=world["c"],
    )
    return session


def test_export_holds_the_customers_data(world: dict[str, Any], api: ApiClient) -> None:
    session = _ended_with_history(world, api)
    status, body = api.get("/api/client/account/export", token=world["c"])
    assert status == 200
    data = body["data"]
    assert data["profile"]["phone"] == PHONE and data["profile"]["email"] == EMAIL
    [exported] = data["sessions"]
    assert exported["session_id"] == str(session.id) and exported["mitra_display_name"] == "Sari"
    assert [m["sender"] for m in exported["messages"]] == ["customer", "mitra"]
    assert exported["feedback"] == {"rating": 5, "comment": "Sari baik"}
    assert data["payments"][0]["amount"] > 0
    assert data["reports_filed"][0]["reason"] == "other"
    # the mitra's private note is not the customer's to read
    assert "kerja di bank" not in str(data)
    assert api.get("/api/client/account/export", token=world["m"])[0] in (401, 403)


def test_delete_account_erases_personal_data_and_anonymises_transcripts(
    world: dict[str, Any], api: ApiClient
) -> None:
    session = _ended_with_history(world, api)
    customer_id = world["customer"].id
    logged = UserEvent.objects.filter(Q(user_id=customer_id) | Q(session_id=session.id))
    assert logged.exists()  # the socket replay log holds the chat's frames for its window
    status, body = api.delete("/api/client/account", token=world["c"])
    assert status == 200 and body["data"] == {"deleted": True}
    customer = Customer.objects.get(pk=world["customer"].id)
    assert (customer.phone, customer.email, customer.google_sub) == (None, None, None)
    assert customer.call_name != "Melati"
    assert not AuthSession.objects.filter(customer=customer).exists()
    # the token stops working at once
    assert api.get("/api/client/account/export", token=world["c"])[0] == 401
    texts = " ".join(ChatMessage.objects.filter(session=session).values_list("text", flat=True))
    assert PHONE not in texts and EMAIL not in texts and "Melati" not in texts
    assert "aku dengar kamu" in texts  # the transcript stays, anonymised
    assert not logged.exists()  # and the replay log's copies are gone
    assert not MitraNote.objects.exists()
    assert Feedback.objects.get().comment == "" and Feedback.objects.get().rating == 5
    assert Report.objects.get().customer_id is None
    assert AuditEntry.objects.filter(action="account_erased").exists()
    # the mitra's views now show the erased name only
    _, past = api.get("/api/mitra/chat/sessions/past", token=world["m"])
    assert "Melati" not in str(past) and PHONE not in str(past)


def test_delete_is_refused_during_a_chat_and_changes_nothing(world: dict[str, Any], api: ApiClient) -> None:
    matched_session(world["customer"], world["sari"])
    status, body = api.delete("/api/client/account", token=world["c"])
    assert (status, body["error"]["code"]) == (409, "INVALID_STATE")
    customer = Customer.objects.get(pk=world["customer"].id)
    assert customer.phone == PHONE and customer.call_name == "Melati"
    assert AuthSession.objects.filter(customer=customer).exists()


def test_ops_erase_from_the_admin(world: dict[str, Any], api: ApiClient, django_user_model: Any) -> None:
    _ended_with_history(world, api)
    ops = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-123456789")
    client = ApiClient().client
    client.force_login(ops)
    response = client.post(
        "/admin/accounts/customer/",
        {"action": "erase_personal_data", "_selected_action": [str(world["customer"].id)]},
    )
    assert response.status_code == 302
    customer = Customer.objects.get(pk=world["customer"].id)
    assert customer.phone is None and customer.email is None


def test_retention_job_deletes_old_transcripts_keeps_open_cases(
    world: dict[str, Any], api: ApiClient
) -> None:
    old = _ended_with_history(world, api)  # has an open report: evidence is kept
    older = matched_session(world["customer"], world["sari"])
    ChatMessage.objects.create(session=older, sender="customer", client_id="x", text="lama")
    finish(older)
    long_ago = timezone.now() - dt.timedelta(days=200)
    ChatSession.objects.filter(pk__in=[old.pk, older.pk]).update(ended_at=long_ago)
    Feedback.objects.update(created_at=timezone.now() - dt.timedelta(days=400))

    result = care_retention_run()
    assert result["messages_deleted"] == 1 and result["comments_cleared"] == 1
    assert not ChatMessage.objects.filter(session=older).exists()
    assert ChatMessage.objects.filter(session=old).count() == 2  # open report keeps it
    assert Feedback.objects.get().rating == 5 and Feedback.objects.get().comment == ""

    # Once the case is closed (long ago), the next run removes the transcript and the case.
    Report.objects.update(status=CaseStatus.CLOSED, handled_at=timezone.now() - dt.timedelta(days=800))
    out = care_sweep.apply().get()
    assert out["messages_deleted"] == 2 and out["reports_deleted"] == 1
    assert ChatSession.objects.filter(pk=old.pk, status=SessionStatus.COMPLETED).exists()  # the row stays
    assert "care.sweep" in {s.name for s in schedules()}
