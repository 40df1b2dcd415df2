"""One load-generator process of the blast benchmark (bench/blast/run.py starts several, so reading
10,000 sockets is not one Python process's job).

Reads one JSON command per line on stdin, answers one JSON line on stdout:

- `{"cmd": "open", "set": name, "url": ws_url, "tokens": [...]}` opens and authenticates one socket
  per token into the named set (sockets of a set are added to those already open);
- `{"cmd": "wait", "set": name, "key": "<type>:<session_id>", "timeout": s}` waits until every
  socket of the set got a frame with that key; answers the arrival times (wall clock) of those that did;
- `{"cmd": "ping", "set": name, "sample": n}` sends `ping` on n sockets of the set at once and
  answers each round trip to its `pong` (ms): the latency of a socket while the others idle;
- `{"cmd": "close"}` closes everything and exits.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from websockets.asyncio.client import connect


class Client:
    def __init__(self) -> None:
        self.sets: dict[str, list[Any]] = {}
        self.arrivals: dict[str, dict[int, float]] = {}  # key -> {socket number: time}
        self.pongs: dict[int, asyncio.Future[float]] = {}
        self.count = 0
        self.readers: list[asyncio.Task[None]] = []

    async def open(self, name: str, url: str, tokens: list[str]) -> dict[str, Any]:
        started = time.perf_counter()
        sem = asyncio.Semaphore(8)  # the server authenticates each one against Postgres

        async def one(token: str) -> None:
            async with sem:
                ws = await connect(url, open_timeout=60, max_queue=None, ping_interval=None)
                await ws.send(json.dumps({"type": "auth", "token": token}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if reply.get("type") != "auth_ok":
                    raise RuntimeError(f"socket refused: {reply}")
                self.count += 1
                number = self.count
                self.sets.setdefault(name, []).append((number, ws))
                self.readers.append(asyncio.ensure_future(self._read(number, ws)))

        await asyncio.gather(*(one(t) for t in tokens))
        return {"opened": len(tokens), "secs": time.perf_counter() - started}

    async def _read(self, number: int, ws: Any) -> None:
        try:
            async for raw in ws:
                now = time.time()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "pong":
                    future = self.pongs.pop(number, None)
                    if future is not None and not future.done():
                        future.set_result(now)
                    continue
                key = f"{kind}:{frame.get('session_id')}"
                self.arrivals.setdefault(key, {})[number] = now
        except Exception:  # a closed socket ends its reader
            return

    async def wait(self, name: str, key: str, timeout: float) -> dict[str, Any]:
        members = {number for number, _ in self.sets.get(name, [])}
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.arrivals.get(key, {})
            if sum(1 for n in got if n in members) >= len(members):
                break
            await asyncio.sleep(0.01)
        got = self.arrivals.pop(key, {})
        return {"times": [t for n, t in got.items() if n in members], "expected": len(members)}

    async def ping(self, name: str, sample: int) -> dict[str, Any]:
        chosen = self.sets.get(name, [])[:sample]
        loop = asyncio.get_running_loop()
        sent: dict[int, float] = {}
        futures: dict[int, asyncio.Future[float]] = {}
        for number, ws in chosen:
            futures[number] = self.pongs[number] = loop.create_future()
            sent[number] = time.time()
            await ws.send('{"type": "ping"}')
        rtts = []
        for number, _ in chosen:
            try:
                arrived = await asyncio.wait_for(futures[number], 10)
                rtts.append((arrived - sent[number]) * 1000)
            except TimeoutError:
                pass
        return {"rtts": rtts}

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for sockets in self.sets.values():
            await asyncio.gather(*(ws.close() for _, ws in sockets), return_exceptions=True)


async def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    client = Client()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await reader.readline():
        command = json.loads(line)
        cmd = command["cmd"]
        if cmd == "open":
            answer = await client.open(command["set"], command["url"], command["tokens"])
        elif cmd == "wait":
            answer = await client.wait(command["set"], command["key"], command["timeout"])
        elif cmd == "ping":
            answer = await client.ping(command["set"], command["sample"])
        else:
            await client.close()
            print(json.dumps({"closed": True}), flush=True)
            return
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
