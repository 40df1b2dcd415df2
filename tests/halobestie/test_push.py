"""The one push loop (halobestie.push.push_to_tokens) and accounts' device fan-out over it: a bad
device token never stops the pushes to the other devices, whichever feature sends them."""

from __future__ import annotations

from typing import ClassVar

import pytest
from django.test import override_settings

from accounts.models import DeviceToken
from accounts.services.devices import push_notify_users
from halobestie.push import PushMessage, PushSender, push_to_tokens

SENDER = "tests.halobestie.test_push.RefusingPushSender"


class RefusingPushSender(PushSender):
    """Refuses tokens that start with "bad" the way a provider client raises on a dead token."""

    sent: ClassVar[list[PushMessage]] = []

    def send(self, message: PushMessage) -> None:
        if message.token.startswith("bad"):
            raise OSError("provider refused the token")
        RefusingPushSender.sent.append(message)


@pytest.fixture(autouse=True)
def _clear() -> None:
    RefusingPushSender.sent.clear()


@override_settings(PUSH_SENDER=SENDER)
def test_a_bad_token_first_in_line_does_not_stop_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    handed = push_to_tokens(
        tokens=["bad-aaaaaaaaaaaa-1", "good-1", "bad-bbbbbbbbbbbb-2", "good-2"],
        kind="chat_request",
        title="t",
        body="b",
        data={"session_id": "s"},
    )
    assert handed == 2
    assert [m.token for m in RefusingPushSender.sent] == ["good-1", "good-2"]
    assert all(m.data == {"kind": "chat_request", "session_id": "s"} for m in RefusingPushSender.sent)
    assert sum("sender failed" in r.getMessage() for r in caplog.records) == 2
    assert not any("bad-aaaaaaaaaaaa-1" in r.getMessage() for r in caplog.records)  # never the whole token


@pytest.mark.django_db
@override_settings(PUSH_SENDER=SENDER)
def test_an_offer_push_reaches_every_other_mitra_past_a_dead_token(make_mitra) -> None:
    dead, alive, other = make_mitra(), make_mitra(), make_mitra()
    DeviceToken.objects.create(token="bad-dead", platform="android", user_type="mitra", mitra=dead)
    DeviceToken.objects.create(token="good-alive", platform="ios", user_type="mitra", mitra=alive)
    DeviceToken.objects.create(token="good-other", platform="ios", user_type="mitra", mitra=other)
    handed = push_notify_users(
        user_type="mitra", user_ids=[dead.id, alive.id], kind="chat_request", title="t", body="b"
    )
    assert handed == 1
    assert [m.token for m in RefusingPushSender.sent] == ["good-alive"]  # not the third mitra's device
