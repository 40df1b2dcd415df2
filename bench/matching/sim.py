"""The discrete-event simulation of one day of paid requests under one matching policy.

Policies (docs/matching.md, "Policies"):

- `blast`: today's pairing (sessions_app/services/pairing.py). At payment every available mitra is
  offered; nobody available -> failed at once (`no_available_mitra`); every offer declined -> failed at
  once (`no_mitra`); no accept within the blast timeout -> failed (`timeout`). Offers stay open until
  the request ends; mitras who become available later are not offered.
- `waves`: the best K available mitras first; wave n (n = 0, 1, ...) offers the next K*g^n best,
  every T seconds, until the blast timeout. An offer lives `offer_window` seconds; unanswered it is
  *missed* (withdrawn, counts toward the missed-offers pause). A decline or a miss is replaced at once
  by the next mitra of the current ranking; when nothing is live and the ranking is used up, the
  next wave is brought forward; when that finds nobody the request waits for the next wave, and
  fails (`no_mitra`) only when no wave is due before the timeout.
- `queue`: waves, but instead of failing the request joins the queue (ordered by payment time) and
  waits until `max_wait` after payment. Whenever a mitra is free (available and holding no live
  offer) it is offered the oldest queued request it may serve (not blocked, not declined by it); a
  request entering the queue is offered at once to every free mitra that may serve it. Queued
  requests get a position and an ETA.

Every policy: first accept wins (an accept at capacity fails, like AT_CAPACITY); blocked pairs are
never offered; a mitra's capacity is never exceeded; cooldown after a session; shifts; customer
patience (cancel).
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bench.matching.model import (
    BREATHER,
    BREATHER_ACCEPT_FACTOR,
    BUSY_ACCEPT_FACTOR,
    PAUSE_NOTICE_MEAN,
    RequestSpec,
    World,
    lognormal,
    offer_draws,
)

# Event kinds; at equal times the lower kind runs first (capacity frees before new work arrives).
SESSION_END, COOL_END, SHIFT_ON, RETURN, SHIFT_OFF, RESPONSE, EXPIRE, WAVE, ARRIVAL, CANCEL, DEADLINE = range(
    11
)

# Request outcomes.
OPEN, MATCHED, FAILED, CANCELLED = "open", "matched", "failed", "cancelled"
# Offer states.
LIVE, ACCEPTED, DECLINED, MISSED, TAKEN, CLOSED = range(6)

ETA_WINDOW = 900.0  # seconds of recent history the ETA methods look at
ETA_LITTLE_WINDOW = 1_800.0


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str  # "blast" | "waves" | "queue"
    blast_timeout: float = 60.0  # opsconfig pairing_blast_timeout_seconds
    wave_size: int = 5  # K
    wave_interval: float = 10.0  # T
    wave_growth: int = 2  # g: wave n offers K * g**n more
    offer_window: float = 30.0  # W: an unanswered offer is missed after this
    max_wait: float = 600.0  # queue only; 0 = no queue (fail as waves would)
    missed_pause: int = 0  # N missed offers in a row pause the mitra; 0 = never
    cooldown: float = 0.0  # seconds after a session before new offers
    exclusive: bool = False  # a mitra holds at most one live offer (an ablation; off by default)
    # Ranking weights: previous mitra of a returning customer, idle time (capped 1 h), few sessions.
    weights: tuple[float, float, float] = (10.0, 1.0, 1.0)

    @property
    def queue_on(self) -> bool:
        return self.kind == "queue" and self.max_wait > 0


class Request:
    __slots__ = (
        "attempts",
        "deadline",
        "declined",
        "ended_at",
        "eta",
        "live",
        "matched_at",
        "mitra",
        "next_wave_at",
        "offers",
        "position",
        "queued",
        "queued_at",
        "reason",
        "snap_i",
        "snapshot",
        "spec",
        "status",
        "wave_n",
    )

    def __init__(self, spec: RequestSpec) -> None:
        self.spec = spec
        self.status = OPEN
        self.reason = ""
        self.offers: dict[int, int] = {}
        self.attempts: dict[int, int] = {}
        self.live: set[int] = set()
        self.declined: set[int] = set()
        self.snapshot: list[int] = []
        self.snap_i = 0
        self.wave_n = 0
        self.next_wave_at = -1.0
        self.deadline = 0.0
        self.matched_at = -1.0
        self.ended_at = -1.0
        self.mitra = -1
        self.queued = False
        self.queued_at = -1.0
        self.position = 0
        self.eta: tuple[float, float, float] | None = None


@dataclass
class RunResult:
    policy: Policy
    seed: int
    requests: list[Request]
    measured: list[Request]
    sessions: list[int]  # per mitra, started within the measured span
    online_hours: list[float]
    offers: int  # offers made for measured requests
    missed: int
    pauses: int
    log: list[tuple[Any, ...]] = field(default_factory=list)


class Simulation:
    def __init__(self, world: World, policy: Policy, *, record: bool = False) -> None:
        self.world = world
        self.policy = policy
        self.record = record
        self.log: list[tuple[Any, ...]] = []
        self.rng = random.Random(world.seed * 7_919 + 17)
        self.now = world.start
        self.events: list[tuple[float, int, int, int, int]] = []
        n = len(world.mitras)
        self.specs = world.mitras
        self.in_shift = [False] * n
        self.paused = [False] * n
        self.pause_version = [0] * n
        self.load = [0] * n
        self.cap = [m.capacity for m in world.mitras]
        self.cool_until = [world.start] * n
        self.idle_since = [world.start] * n
        self.last_end = [world.start - 10 * BREATHER] * n
        self.sessions_today = [0] * n
        self.streak = [0] * n
        self.mitra_live: list[set[int]] = [set() for _ in range(n)]
        self.online: set[int] = set()
        self.requests = [Request(spec) for spec in world.requests]
        self.queue: list[int] = []  # queued request indices, ascending = payment order
        self.recent_starts: deque[float] = deque()
        self.recent_departures: deque[float] = deque()
        self.recent_waits: deque[tuple[float, float]] = deque()
        self.offers = 0
        self.missed = 0
        self.pauses = 0
        self.exclusive = policy.exclusive
        # Missed offers and pauses are counted from the start of the measured day (not the warm-up).
        self.measure_from = 0.0 if world.start < 0 else world.start
        for mitra in world.mitras:
            for a, b in mitra.shifts:
                self._at(a, SHIFT_ON, mitra.index)
                self._at(b, SHIFT_OFF, mitra.index)
        for request in world.requests:
            self._at(request.arrival, ARRIVAL, request.index)

    # --- plumbing -------------------------------------------------------------------------------

    def _at(self, t: float, kind: int, a: int, b: int = 0, c: int = 0) -> None:
        heapq.heappush(self.events, (t, kind, a, b, c))

    def _log(self, *entry: Any) -> None:
        if self.record:
            self.log.append((self.now, *entry))

    def run(self) -> RunResult:
        handlers = {
            SESSION_END: self._session_end,
            COOL_END: self._cool_end,
            SHIFT_ON: self._shift_on,
            RETURN: self._return,
            SHIFT_OFF: self._shift_off,
            RESPONSE: self._response,
            EXPIRE: self._expire,
            WAVE: self._wave_due,
            ARRIVAL: self._arrival,
            CANCEL: self._cancel,
            DEADLINE: self._deadline,
        }
        open_left = len(self.requests)
        last_arrival = self.requests[-1].spec.arrival if self.requests else self.world.start
        events = self.events
        while events:
            t, kind, a, b, c = heapq.heappop(events)
            self.now = t
            handlers[kind](a, b, c)
            if (
                kind in (ARRIVAL, CANCEL, DEADLINE, RESPONSE, EXPIRE, WAVE, RETURN, SHIFT_OFF)
                and t >= last_arrival
            ):
                open_left = sum(1 for r in self.requests if r.status == OPEN)
                if open_left == 0:
                    break
        return self._result()

    def _result(self) -> RunResult:
        start, end = 0.0 if self.world.start < 0 else self.world.start, self.world.end
        measured = [r for r in self.requests if r.spec.arrival >= start]
        sessions = [0] * len(self.specs)
        offers = 0
        for r in measured:
            offers += sum(self.requests[r.spec.index].attempts.values())
            if r.status == MATCHED:
                sessions[r.mitra] += 1
        online = [m.online_seconds(start, end) / 3_600.0 for m in self.specs]
        return RunResult(
            policy=self.policy,
            seed=self.world.seed,
            requests=self.requests,
            measured=measured,
            sessions=sessions,
            online_hours=online,
            offers=offers,
            missed=self.missed,
            pauses=self.pauses,
            log=self.log,
        )

    # --- mitra state ----------------------------------------------------------------------------

    def available(self, m: int) -> bool:
        """Offerable now: online (shift on, not paused), under capacity, out of cooldown."""
        return (
            self.in_shift[m]
            and not self.paused[m]
            and self.load[m] < self.cap[m]
            and self.now >= self.cool_until[m]
        )

    def free(self, m: int) -> bool:
        return self.available(m) and not self.mitra_live[m]

    def _offerable(self, r: Request, m: int) -> bool:
        if m in r.spec.blocked or not self.available(m):
            return False
        # While anyone is queued, waves only reach free mitras (who may serve nobody in the queue),
        # so a request in its waves never takes a mitra the queue is waiting for.
        busy_with_offers = bool(self.mitra_live[m])
        return not (busy_with_offers and (self.exclusive or self.queue))

    def _became_free(self, m: int) -> None:
        """Something changed that may let the queue offer this mitra a request."""
        if self.policy.queue_on and self.queue and self.free(m):
            self._dispatch(m)

    def _session_end(self, m: int, r: int, _c: int) -> None:
        self.load[m] -= 1
        self.last_end[m] = self.now
        self._log("session_end", r, m)
        cooldown = self.policy.cooldown
        if cooldown > 0:
            self.cool_until[m] = self.now + cooldown
            self._at(self.now + cooldown, COOL_END, m)
        if self.load[m] == 0:
            self.idle_since[m] = self.now + cooldown
        if cooldown <= 0:
            self._became_free(m)

    def _cool_end(self, m: int, _b: int, _c: int) -> None:
        if self.cool_until[m] <= self.now:
            self._became_free(m)

    def _shift_on(self, m: int, _b: int, _c: int) -> None:
        self.in_shift[m] = True
        # Going online again clears a missed-offers pause.
        if self.paused[m]:
            self.paused[m] = False
            self.pause_version[m] += 1
        self.streak[m] = 0
        self.online.add(m)
        if self.load[m] == 0:
            self.idle_since[m] = max(self.idle_since[m], self.now)
        self._log("online", m)
        self._became_free(m)

    def _shift_off(self, m: int, _b: int, _c: int) -> None:
        self.in_shift[m] = False
        self.online.discard(m)
        self._log("offline", m)

    def _pause(self, m: int) -> None:
        self.paused[m] = True
        self.pause_version[m] += 1
        self.online.discard(m)
        if self.now >= self.measure_from:
            self.pauses += 1
        self._log("pause", m)
        for rid in sorted(self.mitra_live[m]):
            r = self.requests[rid]
            r.offers[m] = CLOSED
            r.live.discard(m)
            self._log("withdrawn", rid, m)
        withdrawn = sorted(self.mitra_live[m])
        self.mitra_live[m].clear()
        for rid in withdrawn:
            self._offer_ended(self.requests[rid])
        back = self.specs[m].away_until(self.now) + self.rng.expovariate(1.0 / PAUSE_NOTICE_MEAN)
        self._at(back, RETURN, m, self.pause_version[m])

    def _return(self, m: int, version: int, _c: int) -> None:
        if not self.paused[m] or version != self.pause_version[m] or not self.in_shift[m]:
            return
        self.paused[m] = False
        self.streak[m] = 0
        self.online.add(m)
        self._log("resume", m)
        self._became_free(m)

    # --- offers ---------------------------------------------------------------------------------

    def _offer(self, r: Request, m: int, via: str) -> None:
        rid = r.spec.index
        attempt = r.attempts.get(m, 0)
        r.attempts[m] = attempt + 1
        r.offers[m] = LIVE
        r.live.add(m)
        self.mitra_live[m].add(rid)
        self._log("offer", rid, m, via)
        spec = self.specs[m]
        blast = self.policy.kind == "blast"
        closes = r.deadline if blast else self.now + self.policy.offer_window
        if not blast:
            self._at(closes, EXPIRE, rid, m, attempt)
        u_slip, u1, u2, u_accept = offer_draws(self.world.seed, rid, m, attempt)
        if spec.slip > 0 and u_slip < spec.slip:
            return  # never answered
        answer_at = spec.away_until(self.now) + (
            lognormal(spec.latency_median, u1, u2) if spec.latency_median else 0.0
        )
        if answer_at >= closes:
            return
        p = spec.accept
        if not self.world.scenario.instant:
            if self.load[m] > 0:
                p *= BUSY_ACCEPT_FACTOR
            if self.now - self.last_end[m] < BREATHER:
                p *= BREATHER_ACCEPT_FACTOR
        self._at(answer_at, RESPONSE, rid, m, attempt * 2 + (1 if u_accept < p else 0))

    def _close_offer(self, r: Request, m: int, state: int) -> None:
        r.offers[m] = state
        r.live.discard(m)
        self.mitra_live[m].discard(r.spec.index)

    def _response(self, rid: int, m: int, code: int) -> None:
        r = self.requests[rid]
        attempt, accept = divmod(code, 2)
        current = r.offers.get(m) == LIVE and r.attempts[m] - 1 == attempt
        if not current:
            if accept:
                self._log("accept", rid, m, "taken" if r.status == MATCHED else "closed")
            return
        self.streak[m] = 0
        if accept and self.load[m] < self.cap[m]:
            self._log("accept", rid, m, "won")
            self._match(r, m)
            return
        if accept:
            self._log("accept", rid, m, "full")
        else:
            self._log("decline", rid, m)
        self._close_offer(r, m, DECLINED)
        r.declined.add(m)
        self._offer_ended(r)
        self._became_free(m)

    def _expire(self, rid: int, m: int, attempt: int) -> None:
        r = self.requests[rid]
        if r.offers.get(m) != LIVE or r.attempts[m] - 1 != attempt:
            return
        self._close_offer(r, m, MISSED)
        if self.now >= self.measure_from:
            self.missed += 1
        self.streak[m] += 1
        self._log("missed", rid, m)
        n = self.policy.missed_pause
        if n and self.streak[m] >= n and not self.paused[m]:
            self._pause(m)
        self._offer_ended(r)
        self._became_free(m)

    def _offer_ended(self, r: Request) -> None:
        """An offer of r ended without a match: replace it, widen, or give up / queue."""
        if r.status != OPEN or r.live:
            if r.status == OPEN and self.policy.kind != "blast" and not r.queued:
                self._replace(r)
            return
        if self.policy.kind == "blast":
            self._fail(r, "no_mitra")  # every offered mitra declined
            return
        if r.queued:
            return
        self._replace(r)
        if r.live:
            return
        if r.next_wave_at >= 0:  # a wave is still due before the deadline: bring it forward
            self._run_wave(r)
        self._after_wave(r)

    def _after_wave(self, r: Request) -> None:
        """Nothing live after a wave: queue it; or wait for the next wave; or fail."""
        if r.live:
            return
        if self.policy.queue_on:
            self._enqueue(r)
        elif r.next_wave_at < 0:
            self._fail(r, "no_mitra")

    def _replace(self, r: Request) -> None:
        """Offer the next mitra of the current ranking (one per ended offer)."""
        while r.snap_i < len(r.snapshot):
            m = r.snapshot[r.snap_i]
            r.snap_i += 1
            if m not in r.offers and self._offerable(r, m):
                self._offer(r, m, "wave")
                return

    # --- ranking and waves ----------------------------------------------------------------------

    def rank(self, r: Request, candidates: list[int]) -> list[int]:
        """Best first: previous mitra of a returning customer, then idle time and few sessions today;
        mitras holding no other live offer before those who do. Ties by a per-request hash."""
        w_prev, w_idle, w_few = self.policy.weights
        prev = r.spec.previous_mitra
        now = self.now
        rid = r.spec.index

        def key(m: int) -> tuple[int, float, int]:
            idle = 0.0 if self.load[m] else min(max(now - self.idle_since[m], 0.0), 3_600.0) / 3_600.0
            score = (w_prev if m == prev else 0.0) + w_idle * idle + w_few / (1.0 + self.sessions_today[m])
            return (1 if self.mitra_live[m] else 0, -score, (m * 2_654_435_761 + rid * 40_503) & 0xFFFFFFFF)

        return sorted(candidates, key=key)

    def _run_wave(self, r: Request) -> None:
        p = self.policy
        n = r.wave_n
        size = p.wave_size * p.wave_growth**n if n < 40 else len(self.specs)
        candidates = [m for m in self.online if m not in r.offers and self._offerable(r, m)]
        ranked = self.rank(r, candidates)
        for m in ranked[:size]:
            self._offer(r, m, "wave")
        r.snapshot = ranked[size:]
        r.snap_i = 0
        r.wave_n = n + 1
        due = self.now + p.wave_interval
        limit = r.spec.arrival + p.blast_timeout if not p.queue_on else r.deadline
        if due < limit:
            r.next_wave_at = due
            self._at(due, WAVE, r.spec.index, n + 1)
        else:
            r.next_wave_at = -1.0

    def _wave_due(self, rid: int, n: int, _c: int) -> None:
        r = self.requests[rid]
        if r.status != OPEN or r.queued or r.wave_n != n:
            return
        self._run_wave(r)
        self._after_wave(r)

    # --- requests -------------------------------------------------------------------------------

    def _arrival(self, rid: int, _b: int, _c: int) -> None:
        r = self.requests[rid]
        spec = r.spec
        p = self.policy
        self._log("arrive", rid)
        self._at(spec.arrival + spec.patience, CANCEL, rid)
        r.deadline = spec.arrival + (p.max_wait if p.queue_on else p.blast_timeout)
        self._at(r.deadline, DEADLINE, rid)
        anyone = any(m not in spec.blocked and self.available(m) for m in self.online)
        if p.kind == "blast":
            if not anyone:
                self._fail(r, "no_available_mitra")
                return
            for m in sorted(m for m in self.online if m not in spec.blocked and self.available(m)):
                self._offer(r, m, "blast")
            return
        if p.queue_on and self.queue:
            self._enqueue(r)  # someone is already waiting: join the queue behind them
            return
        if not anyone:
            if p.queue_on:
                self._enqueue(r)
            else:
                self._fail(r, "no_available_mitra")
            return
        self._run_wave(r)
        self._after_wave(r)

    def _cancel(self, rid: int, _b: int, _c: int) -> None:
        r = self.requests[rid]
        if r.status == OPEN:
            self._end(r, CANCELLED, "cancelled")

    def _deadline(self, rid: int, _b: int, _c: int) -> None:
        r = self.requests[rid]
        if r.status == OPEN:
            self._fail(r, "queue_timeout" if self.policy.queue_on else "timeout")

    def _fail(self, r: Request, reason: str) -> None:
        self._end(r, FAILED, reason)

    def _match(self, r: Request, m: int) -> None:
        self._close_offer(r, m, ACCEPTED)
        r.mitra = m
        r.matched_at = self.now
        self.load[m] += 1
        if self.now >= 0 or self.world.start >= 0:
            self.sessions_today[m] += 1
        self.recent_starts.append(self.now)
        if r.queued and r.position:
            self.recent_waits.append((self.now, (self.now - r.queued_at) / r.position))
        self._log("match", r.spec.index, m)
        self._at(self.now + r.spec.occupancy, SESSION_END, m, r.spec.index)
        self._end(r, MATCHED, "matched")
        self._became_free(m)

    def _end(self, r: Request, status: str, reason: str) -> None:
        rid = r.spec.index
        r.status = status
        r.reason = reason
        r.ended_at = self.now
        closed = sorted(r.live)
        for m in closed:
            self._close_offer(r, m, TAKEN if status == MATCHED else CLOSED)
        if self.policy.kind == "blast" and reason == "timeout" and self.now >= self.measure_from:
            self.missed += len(closed)
        if r.queued:
            i = bisect.bisect_left(self.queue, rid)
            if i < len(self.queue) and self.queue[i] == rid:
                self.queue.pop(i)
            self.recent_departures.append(self.now)
        self._log("end", rid, status, reason)
        for m in closed:
            self._became_free(m)

    # --- the queue ------------------------------------------------------------------------------

    def _enqueue(self, r: Request) -> None:
        rid = r.spec.index
        r.queued = True
        r.queued_at = self.now
        r.next_wave_at = -1.0
        i = bisect.bisect_left(self.queue, rid)
        r.position = i + 1
        r.eta = self._eta(r.position)
        self.queue.insert(i, rid)
        self._log("queued", rid, r.position)
        for m in sorted(self.online):
            if self.free(m):
                self._dispatch(m)

    def _dispatch(self, m: int) -> None:
        """Offer a free mitra the oldest queued request it may serve."""
        for rid in self.queue:
            r = self.requests[rid]
            if m in r.spec.blocked or m in r.declined:
                continue
            self._offer(r, m, "queue")
            return

    def _eta(self, position: int) -> tuple[float, float, float]:
        """Three estimates of the wait from now (docs/matching.md, "ETA"): position over recent
        session starts; position over recent queue departures (matched, cancelled or timed out; the
        starts rate when the queue is new); position times the recent queue wait per position
        (Little's law; the starts estimate when nobody was matched from the queue recently)."""
        now = self.now
        for recent in (self.recent_starts, self.recent_departures):
            while recent and recent[0] < now - ETA_WINDOW:
                recent.popleft()
        while self.recent_waits and self.recent_waits[0][0] < now - ETA_LITTLE_WINDOW:
            self.recent_waits.popleft()
        fallback = self.policy.max_wait
        starts = len(self.recent_starts)
        departures = len(self.recent_departures)
        by_starts = position * ETA_WINDOW / starts if starts else fallback
        by_departures = position * ETA_WINDOW / departures if departures else by_starts
        if self.recent_waits:
            per_position = sum(w for _, w in self.recent_waits) / len(self.recent_waits)
            by_waits = position * per_position
        else:
            by_waits = by_starts
        return (by_starts, by_departures, by_waits)


def simulate(world: World, policy: Policy, *, record: bool = False) -> RunResult:
    return Simulation(world, policy, record=record).run()
