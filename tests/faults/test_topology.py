"""Two web instances, two clock workers and a tasks worker on one Valkey (and beat): a blast, a chat
and a clock deadline crossing instances (docs/reliability.md, "Topology"; docs/scaling.md).

The customer is connected to web A, both mitras to web B. The payment is confirmed on A (its blast
runs in A's process), the offers reach the mitras' sockets on B, the accept goes to B, the customer
learns of it on A; chat frames cross A ⇄ B; the expiry (forced to a few seconds ahead through A) is
fired by one of the two clock workers, once, and reaches both sides; the tasks worker runs the
sweeps beat sends to its queues and no deadline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from halobestie.celery import CLOCK_QUEUE, DEFAULT_QUEUE, SWEEPS_QUEUE
from sessions_app.models import ChatSession, SessionStatus
from sessions_app.services.checkout import checkout_create
from tests.faults.conftest import ChildProcess, Stack, call, wait_until, wait_worker_ready
from tests.sessions_app.pairing_support import go_online

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

EXPIRED = re.compile(r"Task sessions_app\.fire_expiry\[[^\]]+\] succeeded in [\d.e-]+s: True")
REQUEST_ID = "topology-expiry-request"
SWEEP_RAN = re.compile(r"Task (availability|accounts|payments)\.\w+\[[^\]]+\] succeeded")
SWEPT = re.compile(r"clock sweep settled: \d+ warnings, (\d+) expiries")


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except Exception:  # a closed socket ends its reader
            return

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def wait(self, kind: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.frames:
                if frame.get("type") == kind and all(frame.get(k) == v for k, v in match.items()):
                    return frame
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no {kind} {match} within {timeout}s; got {[f.get('type') for f in self.frames]}"
        )

    def count(self, kind: str, **match: Any) -> int:
        return sum(
            1 for f in self.frames if f.get("type") == kind and all(f.get(k) == v for k, v in match.items())
        )

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


async def open_socket(port: int, token: str, session_id: str | None = None) -> Socket:
    ws = await connect(f"ws://127.0.0.1:{port}/api/shared/ws", open_timeout=20)
    frame: dict[str, Any] = {"type": "auth", "token": token}
    if session_id:
        frame["session_id"] = session_id
    await ws.send(json.dumps(frame))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
    assert reply.get("type") == "auth_ok", reply
    return Socket(ws)


def _expiries_acted(*workers: ChildProcess) -> int:
    total = 0
    for worker in workers:
        for record in worker.log_records():
            message = str(record.get("message", ""))
            if EXPIRED.search(message):
                total += 1
            elif m := SWEPT.search(message):
                total += int(m.group(1))
    return total


def test_blast_chat_and_clock_across_two_webs_and_two_workers(
    transactional_db: None, make_customer: Any, make_mitra: Any, login: Any, stack: Stack
) -> None:
    _, port_a = stack.web("webA")
    _, port_b = stack.web("webB")
    # The production worker layout (docs/scaling.md): two clock workers (either may fire a deadline,
    # exactly one does) and a tasks worker for the `default` and `sweeps` queues.
    workers = [
        stack.worker("clock1", concurrency=1, queues=CLOCK_QUEUE),
        stack.worker("clock2", concurrency=1, queues=CLOCK_QUEUE),
    ]
    tasks = stack.worker("tasks", concurrency=1, queues=f"{DEFAULT_QUEUE},{SWEEPS_QUEUE}")
    stack.beat()
    for worker in (*workers, tasks):
        wait_worker_ready(worker)

    customer = make_customer(call_name="Sari")
    mitras = [make_mitra(), make_mitra()]
    go_online(*mitras)
    customer_token = login(customer).access_token
    mitra_tokens = [login(m).access_token for m in mitras]
    payment = checkout_create(customer_id=customer.id, mode="chat", duration_minutes=15, method="qris")

    async def scenario() -> dict[str, Any]:
        customer_ws = await open_socket(port_a, customer_token)
        mitra_ws = [await open_socket(port_b, token) for token in mitra_tokens]
        status, body = await asyncio.to_thread(
            call,
            port_a,
            "POST",
            "/internal/_test/force-confirm-payment",
            {"payment_request_id": str(payment.id)},
        )
        assert status == 200, body
        session_id = body["data"]["session_id"]
        # Blast (in web A) → both mitras' sockets on web B.
        for ws in mitra_ws:
            await ws.wait("chat_request", session_id=session_id)
        # Accept on B: first wins, second is REQUEST_TAKEN; the customer hears it on A.
        path = f"/api/mitra/chat-requests/{session_id}/accept"
        won = await asyncio.to_thread(call, port_b, "POST", path, token=mitra_tokens[0])
        lost = await asyncio.to_thread(call, port_b, "POST", path, token=mitra_tokens[1])
        assert won[0] == 200, won
        assert lost[0] == 409 and lost[1]["error"]["code"] == "REQUEST_TAKEN", lost
        await customer_ws.wait("session_started", session_id=session_id)

        # Chat across instances, in session mode.
        customer_chat = await open_socket(port_a, customer_token, session_id)
        mitra_chat = await open_socket(port_b, mitra_tokens[0], session_id)
        await customer_chat.send({"type": "message", "client_id": "c-1", "text": "halo dari A"})
        await mitra_chat.wait("message", client_id="c-1", text="halo dari A")
        await mitra_chat.send({"type": "message", "client_id": "m-1", "text": "halo dari B"})
        await customer_chat.wait("message", client_id="m-1", text="halo dari B")

        # Clock: expiry forced 3 s ahead through A; one of the two workers fires it.
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        status, body = await asyncio.to_thread(
            lambda: call(
                port_a,
                "POST",
                "/internal/_test/force-session-expires-at",
                {"session_id": session_id, "expires_at": due.isoformat()},
                request_id=REQUEST_ID,
            )
        )
        assert status == 200, body
        await customer_chat.wait("session_expired", session_id=session_id, timeout=20)
        await mitra_chat.wait("session_expired", session_id=session_id, timeout=20)
        await asyncio.sleep(3)  # room for a duplicate to show up
        out = {
            "session_id": session_id,
            "due": due,
            "expired_customer": customer_chat.count("session_expired", session_id=session_id),
            "expired_mitra": mitra_chat.count("session_expired", session_id=session_id),
            "offers": [ws.count("chat_request", session_id=session_id) for ws in mitra_ws],
        }
        for ws in [customer_ws, *mitra_ws, customer_chat, mitra_chat]:
            await ws.close()
        return out

    out = asyncio.run(scenario())
    assert out["offers"] == [1, 1]
    assert out["expired_customer"] == 1 and out["expired_mitra"] == 1
    session = ChatSession.objects.get(pk=out["session_id"])
    assert session.status == SessionStatus.CLOSING and session.mitra_id == mitras[0].id
    assert session.closing_started_at is not None
    lateness = (session.closing_started_at - out["due"]).total_seconds()
    wait_until(lambda: _expiries_acted(*workers) >= 1, 5, 0.2, "the expiry in a worker log")
    assert _expiries_acted(*workers) == 1
    # The worker's log lines for the expiry task carry the request id of the request that armed it.
    tagged = [
        r
        for w in workers
        for r in w.log_records()
        if r.get("task") == "sessions_app.fire_expiry" and r.get("request_id") == REQUEST_ID
    ]
    assert tagged and all(r.get("task_id") for r in tagged)
    # The tasks worker runs what beat sends to `sweeps`, and never a deadline.
    wait_until(
        lambda: any(SWEEP_RAN.search(str(r.get("message", ""))) for r in tasks.log_records()),
        60,
        0.5,
        "a periodic sweep on the tasks worker",
    )
    assert _expiries_acted(tasks) == 0
    print(f"\nFAULT topology 2 webs x 2 workers: expiry lateness {lateness:.2f}s")
