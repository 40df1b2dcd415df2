"""Postgres connections cut mid-traffic → 503 SERVICE_UNAVAILABLE envelope, then recovery without a
restart. A Django process whose DATABASE_URL goes through a TCP proxy the test cuts (the shared
Postgres is never touched). The fault suite runs the same against a real uvicorn under concurrent load
(tests/faults/test_postgres_faults.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.faults.conftest import CuttableProxy, database_url

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys, time, django
django.setup()
from django.test import Client
c = Client(REMOTE_ADDR="127.0.0.1")

def signup(name):
    r = c.post("/api/shared/auth/anonymous", data=json.dumps({"call_name": name}), content_type="application/json")
    return [r.status_code, json.loads(r.content)]

def say(obj):
    print(json.dumps(obj), flush=True)

say({"before": signup("Before"), "ready": c.get("/ready").status_code})
sys.stdin.readline()  # the parent cut the proxy
say({"during": signup("During"), "ready": c.get("/ready").status_code, "health": c.get("/health").status_code})
sys.stdin.readline()  # the parent restored the proxy
started = time.monotonic()
while True:
    after = signup("After")
    if after[0] == 201 or time.monotonic() - started > 20:
        break
    time.sleep(0.1)
say({"after": after, "recovery": time.monotonic() - started, "ready": c.get("/ready").status_code})
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_connections_cut_then_restored_503_then_recovers_in_the_same_process():
    proxy = CuttableProxy(int(connection.settings_dict.get("PORT") or 5432))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "halobestie.settings.test",
        "DATABASE_URL": database_url(proxy.port),
        "DB_CONNECT_TIMEOUT_SECONDS": "1",
        "DB_POOL_TIMEOUT_SECONDS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        before = json.loads(proc.stdout.readline())
        assert before["before"][0] == 201 and before["ready"] == 200
        proxy.cut()  # resets the pooled connection the process holds, refuses new ones
        proc.stdin.write("cut\n")
        proc.stdin.flush()
        during = json.loads(proc.stdout.readline())
        assert during["during"] == [
            503,
            {
                "success": False,
                "error": {"code": "SERVICE_UNAVAILABLE", "message": "Service temporarily unavailable."},
            },
        ]
        assert during["ready"] == 503 and during["health"] == 200
        proxy.restore()
        proc.stdin.write("restore\n")
        proc.stdin.flush()
        after = json.loads(proc.stdout.readline())
        assert after["after"][0] == 201 and after["ready"] == 200
        assert after["recovery"] < 20
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proxy.close()
