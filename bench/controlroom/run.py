"""Dashboard data at scale: 100k mitras, 1M chat sessions (and their 1M payments).

Measures, in one run against one database:
  * bare     the dashboard's SQL alone through one psycopg cursor (the reference): the stale count,
             the live-status counts, pending payments, today's sessions, today's revenue, the 24-hour
             hourly aggregate;
  * counts   `controlroom.selectors.dashboard_get()` (adds the Valkey presence counts and the ORM);
  * json     the whole dashboard JSON with charts, as the page polls it (dashboard_get + the hourly
             stats + the SVG charts);
  * fallback `dashboard_get()` with Valkey stopped (presence from Postgres).

The data is built once with generate_series and kept (rebuild with --rebuild).
Run: .venv/bin/python -m bench controlroom [--rebuild] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import prepare

DATABASE = "halobestie_bench_controlroom"
MITRAS = 100_000
ONLINE = 20_000
CUSTOMERS = 200_000
SESSIONS = 1_000_000
LIVE = 3_000  # live sessions (searching / active / extending / closing), one per customer

SEED_SQL = [
    "TRUNCATE chat_request_notifications, chat_sessions, payment_requests, mitra_online_logs,"
    " mitra_online_status, mitras, customers CASCADE",
    """INSERT INTO mitras (id, phone, display_name, is_active, created_at, updated_at)
       SELECT gen_random_uuid(), '+62812' || lpad(i::text, 8, '0'), 'Mitra ' || i, i %% 50 <> 0, now(), now()
         FROM generate_series(1, %(mitras)s) i""",
    """INSERT INTO mitra_online_status (mitra_id, is_online, last_online_at, last_heartbeat_at, updated_at)
       SELECT id, rn <= %(online)s, now() - interval '2 hours',
              CASE WHEN rn <= %(online)s THEN now() - (CASE WHEN rn %% 20 = 0 THEN interval '10 minutes' ELSE interval '5 seconds' END) END,
              now()
         FROM (SELECT id, row_number() OVER () rn FROM mitras WHERE is_active) m""",
    """INSERT INTO customers (id, call_name, is_anonymous, created_at, updated_at)
       SELECT gen_random_uuid(), 'Customer ' || i, true, now(), now() FROM generate_series(1, %(customers)s) i""",
    # Sessions spread over 30 days; the newest LIVE rows are live (one per customer), the rest ended.
    """CREATE TEMP TABLE bench_customers AS SELECT id, row_number() OVER (ORDER BY id) rn FROM customers""",
    """CREATE TEMP TABLE bench_mitras AS SELECT id, row_number() OVER (ORDER BY id) rn FROM mitras WHERE is_active""",
    """CREATE TEMP TABLE bench_rows AS
       SELECT i, gen_random_uuid() AS pay_id, gen_random_uuid() AS session_id,
              now() - (i * (interval '30 days' / %(sessions)s)) AS created,
              CASE WHEN i <= %(live)s THEN (ARRAY['searching','active','active','active','extending','closing'])[1 + i %% 6]
                   WHEN i %% 10 = 0 THEN 'no_mitra' WHEN i %% 37 = 0 THEN 'cancelled' ELSE 'completed' END AS status
         FROM generate_series(1, %(sessions)s) i""",
    """INSERT INTO payment_requests (id, customer_id, amount, minutes, mode, method_id, status, expires_at,
                                     confirmed_at, provider_invoice_id, provider_invoice_url, created_at, updated_at,
                                     kind, discount_amount, promotion_code, payment_channel, flagged_reason)
       SELECT r.pay_id, c.id, 30000, 30, 'chat', 'qris',
              CASE WHEN r.status IN ('no_mitra', 'cancelled') THEN 'failed_pairing' ELSE 'consumed' END,
              r.created + interval '15 minutes', r.created, '', '', r.created, r.created, 'session', 0, '', '', ''
         FROM bench_rows r JOIN bench_customers c ON c.rn = 1 + (r.i %% %(customers)s)""",
    """INSERT INTO chat_sessions (id, customer_id, mitra_id, status, mode, duration_minutes, topic_sensitivity,
                                  payment_request_id, blast_started_at, started_at, expires_at, ended_at,
                                  ended_by, created_at, updated_at)
       SELECT r.session_id, c.id,
              CASE WHEN r.status IN ('no_mitra', 'cancelled', 'searching') THEN NULL ELSE m.id END,
              r.status, 'chat', 30, CASE WHEN r.i %% 9 = 0 THEN 'sensitive' ELSE 'normal' END,
              r.pay_id, r.created,
              CASE WHEN r.status IN ('no_mitra', 'cancelled', 'searching') THEN NULL
                   ELSE r.created + (5 + r.i %% 40) * interval '1 second' END,
              CASE WHEN r.status IN ('no_mitra', 'cancelled', 'searching') THEN NULL ELSE r.created + interval '30 minutes' END,
              CASE WHEN r.status IN ('completed', 'no_mitra', 'cancelled') THEN r.created + interval '31 minutes' END,
              '', r.created, r.created
         FROM bench_rows r
         JOIN bench_customers c ON c.rn = 1 + (r.i %% %(customers)s)
         JOIN bench_mitras m ON m.rn = 1 + (r.i %% (SELECT count(*) FROM bench_mitras))""",
    "INSERT INTO payment_requests (id, customer_id, amount, minutes, mode, method_id, status, expires_at,"
    " provider_invoice_id, provider_invoice_url, created_at, updated_at,"
    " kind, discount_amount, promotion_code, payment_channel, flagged_reason)"
    " SELECT gen_random_uuid(), id, 30000, 30, 'chat', 'qris', 'pending', now() + interval '15 minutes', '', '',"
    " now(), now(), 'session', 0, '', '', '' FROM bench_customers WHERE rn > %(customers)s - 500",
    "ANALYZE",
]


def _seed(cursor: Any) -> None:
    params = {"mitras": MITRAS, "online": ONLINE, "customers": CUSTOMERS, "sessions": SESSIONS, "live": LIVE}
    for n, sql in enumerate(SEED_SQL, start=1):
        started = time.perf_counter()
        cursor.execute(sql, params)
        print(f"  seed {n}/{len(SEED_SQL)}: {time.perf_counter() - started:.1f} s", flush=True)


def _time(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm (plans, connections, the config cache)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p90": samples[int(len(samples) * 0.9) - 1],
        "max": samples[-1],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench controlroom")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    _, valkey = prepare(database=DATABASE, label="controlroom", pool_size=4)
    try:
        return _run(args, valkey)
    finally:
        valkey.stop()


def _run(args: argparse.Namespace, valkey: Any) -> int:
    # reason: Django is set up by prepare() above
    from django.db import connection

    from availability.services import availability_reseed
    from controlroom import charts, selectors
    from opsconfig.services import config_get
    from sessions_app.models import CAPACITY_STATUSES

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM chat_sessions")
        have = cur.fetchone()[0]
        if args.rebuild or have != SESSIONS + 0:
            print(f"seeding {MITRAS:,} mitras, {SESSIONS:,} sessions (once; --rebuild to redo)", flush=True)
            _seed(cur)
        # Heartbeats relative to now (the data may be days old): 1 in 20 online mitras stale.
        cur.execute(
            "UPDATE mitra_online_status SET last_heartbeat_at = now() - CASE WHEN hashtext(mitra_id::text) % 20 = 0"
            " THEN interval '10 minutes' ELSE interval '5 seconds' END WHERE is_online"
        )
    availability_reseed(reason="bench")
    cfg = config_get(fresh=True)
    day_start = selectors.business_day_start()

    def bare() -> None:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM mitra_online_status s JOIN mitras m ON m.id = s.mitra_id"
                " WHERE s.is_online AND m.is_active AND (s.last_heartbeat_at < now() - %s * interval '1 second'"
                " OR s.last_heartbeat_at IS NULL)",
                [cfg.mitra_stale_after_seconds],
            )
            cur.execute(
                "SELECT count(*) FROM mitra_online_status s JOIN mitras m ON m.id = s.mitra_id"
                " WHERE s.is_online AND m.is_active AND s.mitra_id IN (SELECT mitra_id FROM chat_sessions"
                " WHERE status = ANY(%s) AND mitra_id IS NOT NULL GROUP BY mitra_id HAVING count(*) >= %s)",
                [[str(s) for s in CAPACITY_STATUSES], cfg.max_customers_per_mitra],
            )
            cur.execute(
                "SELECT status, count(*) FROM chat_sessions WHERE status = ANY(%s) GROUP BY status",
                [[str(s) for s in selectors.SESSION_COUNT_STATUSES]],
            )
            cur.execute("SELECT count(*) FROM payment_requests WHERE status = 'pending'")
            cur.execute("SELECT count(*) FROM chat_sessions WHERE created_at >= %s", [day_start])
            cur.execute(
                "SELECT sum(amount) FROM payment_requests WHERE status = 'consumed' AND confirmed_at >= %s",
                [day_start],
            )
            cur.execute(
                selectors._HOURLY_SQL,
                {"since": day_start, "failed": [str(s) for s in selectors.FAILED_STATUSES]},
            )
            cur.fetchall()

    def counts() -> None:
        selectors.dashboard_get()

    def full_json() -> None:
        data = selectors.dashboard_get().as_json()
        data["charts"] = "".join(charts.dashboard_charts(selectors.hourly_stats_list()))

    results = {
        "bare SQL (reference)": _time(bare, args.repeat),
        "dashboard_get (counts)": _time(counts, args.repeat),
        "dashboard JSON + 24 h charts": _time(full_json, args.repeat),
    }
    data = selectors.dashboard_get()
    valkey.stop()
    try:
        results["dashboard_get, Valkey down"] = _time(counts, max(args.repeat // 3, 5))
    finally:
        valkey.start()
    print(
        f"\ndata: {MITRAS:,} mitras ({ONLINE:,} online), {SESSIONS:,} sessions; counts now: {data.mitras} "
        f"{data.sessions} pending={data.pending_payments} today={data.today_sessions} (source {data.mitras_source})"
    )
    base = results["bare SQL (reference)"]["p50"]
    print(f"\n{'what':34} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8} {'x bare':>7}")
    for name, r in results.items():
        print(f"{name:34} {r['p50']:8.1f} {r['p90']:8.1f} {r['max']:8.1f} {r['p50'] / base:7.2f}")
    worst = results["dashboard JSON + 24 h charts"]["p90"]
    print(f"\nbudget: dashboard JSON p90 {worst:.1f} ms {'<' if worst < 300 else '>='} 300 ms")
    return 0
