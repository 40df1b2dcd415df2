"""One lock order for every mitra/status write (docs/security.md "Lock order"): concurrent toggles,
deactivations, heartbeats, stale sweeps and accepts from real threads cause no deadlock and no 5xx."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
from django.db import OperationalError, connections
from django.test import Client

from accounts.services.tokens import auth_session_issue
from availability.services import (
    _offline_in_postgres_ids,
    availability_heartbeat,
    mitra_set_offline,
    mitra_set_online,
)
from halobestie.exceptions import ApplicationError
from mitras.models import MitraOnlineLog
from mitras.services import mitra_deactivate, mitra_reactivate
from sessions_app.services.pairing import chat_request_accept
from tests.concurrency import deadlock_count
from tests.sessions_app.pairing_support import go_online, paid_session, seed

ROUNDS = 60


@pytest.mark.django_db(transaction=True)
def test_concurrent_mitra_writes_never_deadlock_or_5xx(make_mitra, make_customer) -> None:
    seed()
    mitras = [make_mitra() for _ in range(3)]
    tokens = {m.id: auth_session_issue(mitra=m).access_token for m in mitras}
    customers = [make_customer() for _ in range(4)]
    go_online(*mitras)
    sessions = [paid_session(c) for c in customers]
    before = deadlock_count()
    failures: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def record(fn) -> None:  # type: ignore[no-untyped-def]
        try:
            fn()
        except ApplicationError:
            pass  # a clean refusal (deactivated, taken, at capacity) is fine
        except OperationalError as exc:
            with lock:
                failures.append(f"{type(exc.__cause__).__name__}: {exc}")

    def http_toggler(index: int) -> None:
        client = Client()
        rng = random.Random(index)
        barrier.wait()
        for _ in range(ROUNDS):
            mitra = rng.choice(mitras)
            path = rng.choice(["online", "offline", "heartbeat"])
            response = client.post(
                f"/api/mitra/status/{path}", HTTP_AUTHORIZATION=f"Bearer {tokens[mitra.id]}"
            )
            with lock:
                statuses.append(response.status_code)
        connections.close_all()

    def service_toggler(index: int) -> None:
        rng = random.Random(100 + index)
        barrier.wait()
        for _ in range(ROUNDS):
            mitra = rng.choice(mitras)
            actions: list[Callable[..., object]] = [
                mitra_set_online,
                mitra_set_offline,
                availability_heartbeat,
            ]
            action = rng.choice(actions)
            record(lambda: action(mitra_id=mitra.id))  # noqa: B023
        connections.close_all()

    def deactivator() -> None:
        rng = random.Random(7)
        barrier.wait()
        for _ in range(ROUNDS // 3):
            mitra = rng.choice(mitras)
            record(lambda: mitra_deactivate(mitra_id=mitra.id))  # noqa: B023
            record(lambda: mitra_reactivate(mitra_id=mitra.id))  # noqa: B023
        connections.close_all()

    def sweeper() -> None:
        barrier.wait()
        for _ in range(ROUNDS // 2):
            # The stale sweep's Postgres step with a cutoff in the future: every online mitra goes.
            record(lambda: _offline_in_postgres_ids([str(m.id) for m in mitras], cutoff=4102444800.0))
        connections.close_all()

    def acceptor() -> None:
        rng = random.Random(9)
        barrier.wait()
        for session in sessions:
            for mitra in rng.sample(mitras, len(mitras)):
                record(lambda: chat_request_accept(session_id=session.id, mitra_id=mitra.id))  # noqa: B023
        connections.close_all()

    threads = [
        threading.Thread(target=http_toggler, args=(0,)),
        threading.Thread(target=http_toggler, args=(1,)),
        threading.Thread(target=service_toggler, args=(0,)),
        threading.Thread(target=service_toggler, args=(1,)),
        threading.Thread(target=deactivator),
        threading.Thread(target=sweeper),
        threading.Thread(target=acceptor),
        threading.Thread(target=service_toggler, args=(2,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:5]
    assert len(statuses) == 2 * ROUNDS
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    assert deadlock_count() == before
    assert MitraOnlineLog.objects.count() > 0  # the writes really happened


def _deadlock() -> OperationalError:
    from psycopg import errors as pg_errors

    try:
        raise OperationalError("deadlock detected") from pg_errors.DeadlockDetected("deadlock detected")
    except OperationalError as exc:
        return exc


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_is_retried_and_never_reported_as_database_unavailable(rf) -> None:
    import json

    from halobestie.exceptions import response_for_exception
    from halobestie.retry import retry_on_conflict

    calls = {"n": 0}

    @retry_on_conflict(attempts=3)
    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise _deadlock()
        return "done"

    assert flaky() == "done"
    assert calls["n"] == 3

    @retry_on_conflict(attempts=2)
    def always() -> None:
        raise _deadlock()

    with pytest.raises(OperationalError) as caught:
        always()
    response = response_for_exception(rf.post("/api/mitra/status/online"), caught.value)
    body = json.loads(response.content)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "unavailable" not in body["error"]["message"].lower()
    assert "retry" in body["error"]["message"].lower()
