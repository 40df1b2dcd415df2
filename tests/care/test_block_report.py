"""Report and block (docs/care.md): participants only, ops cases, the pair never matched again on
any path (blast, returning chat, a stale offer's accept), race-safe under real concurrent threads."""

from __future__ import annotations

import pytest

from care.models import AuditEntry, Block, CaseStatus, Report
from care.services import report_status_set
from sessions_app.models import ChatRequestNotification, ChatSession, SessionStatus
from sessions_app.services.pairing import pairing_cancel
from tests.care.support import finish, matched_session
from tests.concurrency import race
from tests.conftest import ApiClient
from tests.sessions_app.pairing_support import go_online, paid_session, seed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(make_customer, make_mitra, login):
    seed()
    customer = make_customer("Bunga", phone="+6281234567890", email="bunga@example.com")
    mitras = [make_mitra("Sari"), make_mitra("Dewi")]
    go_online(*mitras)
    return {
        "customer": customer,
        "mitras": mitras,
        "customer_token": login(customer).access_token,
        "mitra_tokens": [login(m).access_token for m in mitras],
        "other_token": login(make_customer("Other")).access_token,
    }


def test_report_by_either_side_opens_an_ops_case(world, api):
    session = matched_session(world["customer"], world["mitras"][0])
    path = f"/api/shared/chat/sessions/{session.id}/report"
    status, body = api.post(path, {"reason": "harassment", "details": "rude"}, token=world["customer_token"])
    assert status == 201, body
    assert body["data"]["status"] == "open" and body["data"]["reason"] == "harassment"
    status, body = api.post(path, {"reason": "spam"}, token=world["mitra_tokens"][0])
    assert status == 201, body
    cases = Report.objects.order_by("created_at")
    assert [(c.reporter_side, c.reason, c.status) for c in cases] == [
        ("customer", "harassment", "open"),
        ("mitra", "spam", "open"),
    ]
    # after the session too
    finish(session)
    assert api.post(path, {"reason": "other"}, token=world["customer_token"])[0] == 201


def test_report_rejects_outsiders_and_bad_input_and_changes_nothing(world, api):
    session = matched_session(world["customer"], world["mitras"][0])
    path = f"/api/shared/chat/sessions/{session.id}/report"
    status, body = api.post(path, {"reason": "harassment"}, token=world["other_token"])
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = api.post(path, {"reason": "harassment"}, token=world["mitra_tokens"][1])
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body = api.post(path, {"reason": "because"}, token=world["customer_token"])
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR") and "reason" in body["error"][
        "message"
    ]
    status, body = api.post(path, {"reason": "other", "details": "x" * 2001}, token=world["customer_token"])
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    status, body = api.post(path, {}, token=world["customer_token"])
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    status, _ = api.post(path, {"reason": "other"})
    assert status == 401
    assert Report.objects.count() == 0


def test_ops_case_moves_forward_and_records_the_handler(world, api, django_user_model):
    session = matched_session(world["customer"], world["mitras"][0])
    api.post(
        f"/api/shared/chat/sessions/{session.id}/report", {"reason": "hate"}, token=world["customer_token"]
    )
    case = Report.objects.get()
    ops = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-123456789")
    report_status_set(report_id=case.id, status=CaseStatus.ACKNOWLEDGED, ops_user_id=ops.pk)
    report_status_set(report_id=case.id, status=CaseStatus.CLOSED, ops_user_id=ops.pk, note="warned")
    case.refresh_from_db()
    assert case.status == "closed" and case.handled_by_id == ops.pk and case.handled_at is not None
    actions = list(
        AuditEntry.objects.filter(object_id=str(case.id)).order_by("at").values_list("action", flat=True)
    )
    assert actions == ["report_opened", "report_acknowledged", "report_closed"]
    # the admin page lists it and acknowledging a closed case is refused
    client = ApiClient().client
    client.force_login(ops)
    page = client.get("/admin/care/report/")
    assert page.status_code == 200 and b"hate" in page.content.lower()


def test_block_is_idempotent_and_the_pair_is_never_offered_again(world, api):
    sari, dewi = world["mitras"]
    session = matched_session(world["customer"], sari)
    path = f"/api/shared/chat/sessions/{session.id}/block"
    status, body = api.post(path, token=world["customer_token"])
    assert status == 200 and body["data"] == {"session_id": str(session.id), "blocked": True, "created": True}
    status, body = api.post(path, token=world["customer_token"])
    assert status == 200 and body["data"]["created"] is False
    # the mitra blocking the same pair is the same block
    assert api.post(path, token=world["mitra_tokens"][0])[1]["data"]["created"] is False
    assert Block.objects.count() == 1
    finish(session)

    # blast: only Dewi is offered, though Sari is online and free
    second = paid_session(world["customer"])
    offered = set(ChatRequestNotification.objects.filter(session=second).values_list("mitra_id", flat=True))
    assert offered == {dewi.id}
    status, body = api.post(f"/api/mitra/chat-requests/{second.id}/accept", token=world["mitra_tokens"][0])
    assert status in (404, 409) and body["error"]["code"] in ("NOT_FOUND", "BLOCKED")
    assert api.post(f"/api/mitra/chat-requests/{second.id}/accept", token=world["mitra_tokens"][1])[0] == 200
    finish(ChatSession.objects.get(pk=second.id))

    # returning chat with the blocked mitra: BLOCKED at checkout, nothing created
    status, body = api.post(
        "/api/client/payment-requests",
        {"mode": "chat", "duration_minutes": 30, "method": "qris", "targeted_mitra_id": str(sari.id)},
        token=world["customer_token"],
    )
    assert (status, body["error"]["code"]) == (409, "BLOCKED")


def test_block_by_the_mitra_also_excludes_and_outsiders_cannot_block(world, api):
    sari, _ = world["mitras"]
    session = matched_session(world["customer"], sari)
    path = f"/api/shared/chat/sessions/{session.id}/block"
    assert api.post(path, token=world["other_token"])[0] == 403
    assert api.post(path, token=world["mitra_tokens"][1])[0] == 403
    assert Block.objects.count() == 0
    status, _ = api.post(path, token=world["mitra_tokens"][0])
    assert status == 200 and Block.objects.get().blocked_by == "mitra"
    finish(session)
    second = paid_session(world["customer"])
    assert sari.id not in set(
        ChatRequestNotification.objects.filter(session=second).values_list("mitra_id", flat=True)
    )


def test_block_committed_after_the_blast_refuses_the_accept(world, api):
    """The offer went out before the block: accepting it is refused with BLOCKED (re-checked under the
    mitra's lock), and the session stays searching for the others."""
    sari, _ = world["mitras"]
    first = matched_session(world["customer"], sari)
    finish(first)
    # Another live blast of the same customer that already reached Sari...
    second = paid_session(world["customer"])
    assert ChatRequestNotification.objects.filter(session=second, mitra=sari).exists()
    # ...then the customer blocks Sari from the old session's screen.
    assert api.post(f"/api/shared/chat/sessions/{first.id}/block", token=world["customer_token"])[0] == 200
    status, body = api.post(f"/api/mitra/chat-requests/{second.id}/accept", token=world["mitra_tokens"][0])
    assert (status, body["error"]["code"]) == (409, "BLOCKED")
    second.refresh_from_db()
    assert second.status == SessionStatus.SEARCHING and second.mitra_id is None


def test_block_racing_the_accept_never_pairs_a_blocked_pair(world):
    """Real threads: the block and the stale offer's accept, released together, many times. Either
    the accept commits first (the pair was matched before the block existed) or it sees the block and
    is refused; never a match made after the block committed."""
    sari, _ = world["mitras"]
    first = matched_session(world["customer"], sari)
    finish(first)
    outcomes = set()
    for _ in range(6):
        Block.objects.all().delete()
        second = paid_session(world["customer"])
        block_path = f"/api/shared/chat/sessions/{first.id}/block"
        accept_path = f"/api/mitra/chat-requests/{second.id}/accept"

        def do_block(path: str = block_path) -> tuple[int, dict]:
            return ApiClient().post(path, token=world["customer_token"])

        def do_accept(path: str = accept_path) -> tuple[int, dict]:
            return ApiClient().post(path, token=world["mitra_tokens"][0])

        results = race(do_block, do_accept)
        (block_status, _), (accept_status, accept_body) = results
        assert block_status == 200
        block = Block.objects.get()
        second.refresh_from_db()
        if accept_status == 200:
            # the accept won the lock: its match is older than the block
            assert second.status == SessionStatus.ACTIVE and second.started_at is not None
            assert second.started_at <= block.created_at
            outcomes.add("accepted first")
            finish(second)
        else:
            assert (accept_status, accept_body["error"]["code"]) == (409, "BLOCKED")
            assert second.status == SessionStatus.SEARCHING
            outcomes.add("blocked first")
            pairing_cancel(session_id=second.id, customer_id=world["customer"].id)
    assert outcomes  # at least one round ran; both orders are legal


def test_report_and_block_never_show_the_customer_phone_or_email(world, api):
    session = matched_session(world["customer"], world["mitras"][0])
    for path, body in (
        (f"/api/shared/chat/sessions/{session.id}/report", {"reason": "other"}),
        (f"/api/shared/chat/sessions/{session.id}/block", None),
    ):
        _, answer = api.post(path, body, token=world["mitra_tokens"][0])
        text = str(answer)
        assert "6281234567890" not in text and "bunga@example.com" not in text
