"""Invariants of the matching simulation (bench/matching, docs/matching.md).

Each test replays the simulation's event log with its own bookkeeping, so a bug in the simulator's
state cannot hide itself. No database: plain functions over small simulated worlds.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import pytest

from bench.matching import run
from bench.matching.model import Scenario, World, build_world
from bench.matching.sim import CANCELLED, FAILED, MATCHED, OPEN, Policy, RunResult, simulate

# Small, busy worlds: 40 mitras, six hours, enough demand that queues form and people get declined.
BUSY = Scenario(mitras=40, load=0.35, hours=6.0)
BLOCKY = dataclasses.replace(BUSY, block_fraction=0.6, blocked_per_customer=(3, 12))

BLAST = Policy("blast", "blast")
WAVES = Policy("waves", "waves", wave_size=2, wave_interval=10.0, missed_pause=3, cooldown=60.0)
QUEUE = dataclasses.replace(WAVES, name="queue", kind="queue", max_wait=600.0)
POLICIES = [BLAST, WAVES, QUEUE]


def _run(policy: Policy, scenario: Scenario = BUSY, seed: int = 7) -> tuple[World, RunResult]:
    world = build_world(seed, scenario)
    return world, simulate(world, policy, record=True)


def _entries(result: RunResult, kind: str) -> list[tuple[Any, ...]]:
    return [e for e in result.log if e[1] == kind]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_request_ends_exactly_once(policy: Policy) -> None:
    world, result = _run(policy)
    ends = _entries(result, "end")
    assert len(world.requests) > 100
    assert sorted(e[2] for e in ends) == list(range(len(world.requests)))
    for _t, _kind, rid, status, _reason in ends:
        assert status in (MATCHED, FAILED, CANCELLED)
        assert result.requests[rid].status == status
    assert all(r.status != OPEN for r in result.requests)
    # Matched exactly when a match was logged, and by the logged mitra.
    matches = {e[2]: e[3] for e in _entries(result, "match")}
    assert {rid for _t, _k, rid, status, _r in ends if status == MATCHED} == set(matches)
    assert all(result.requests[rid].mitra == m for rid, m in matches.items())


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_no_mitra_over_capacity_at_any_time(policy: Policy) -> None:
    scenario = dataclasses.replace(BUSY, capacity_two_fraction=0.3)
    world, result = _run(policy, scenario)
    load: dict[int, int] = defaultdict(int)
    peak: dict[int, int] = defaultdict(int)
    for entry in result.log:
        if entry[1] == "match":
            m = entry[3]
            load[m] += 1
            peak[m] = max(peak[m], load[m])
            assert load[m] <= world.mitras[m].capacity, f"mitra {m} over capacity at t={entry[0]}"
        elif entry[1] == "session_end":
            load[entry[3]] -= 1
            assert load[entry[3]] >= 0
    # The bound was actually reached by mitras of both capacities.
    assert any(peak[m] == 2 for m in peak if world.mitras[m].capacity == 2)
    assert any(peak[m] == 1 for m in peak if world.mitras[m].capacity == 1)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_first_accept_wins(policy: Policy) -> None:
    world, result = _run(policy)
    load: dict[int, int] = defaultdict(int)
    accepts: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for entry in result.log:
        kind = entry[1]
        if kind == "accept":
            _t, _k, rid, m, outcome = entry
            accepts[rid].append((m, outcome))
            if outcome == "full":
                assert load[m] >= world.mitras[m].capacity  # refused only when really full
        elif kind == "match":
            load[entry[3]] += 1
        elif kind == "session_end":
            load[entry[3]] -= 1
    contested = 0
    for rid, seen in accepts.items():
        outcomes = [o for _m, o in seen]
        winners = [m for m, o in seen if o == "won"]
        request = result.requests[rid]
        if request.status == MATCHED:
            assert winners == [request.mitra]
            first_ok = next(i for i, o in enumerate(outcomes) if o != "full")
            assert outcomes[first_ok] == "won"  # the first accept from someone with room wins ...
            assert set(outcomes[first_ok + 1 :]) <= {"taken"}  # ... and every later one is told so
            contested += len(outcomes) - first_ok - 1
        else:
            assert winners == []
            assert "taken" not in outcomes
    assert contested > 0  # blast and waves really had accepts racing


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_blocked_pairs_are_never_offered(policy: Policy) -> None:
    world, result = _run(policy, BLOCKY)
    offers = _entries(result, "offer")
    assert offers
    for _t, _k, rid, m, _via in offers:
        assert m not in world.requests[rid].blocked
    # Not vacuous: many requests had blocks, and blocked mitras were offered other requests.
    blocked_pairs = {(r.index, m) for r in world.requests for m in r.blocked}
    assert len(blocked_pairs) > 100
    offered_mitras = {m for _t, _k, _rid, m, _via in offers}
    assert any(m in offered_mitras for _rid, m in blocked_pairs)


def test_blast_with_instant_mitras_matches_whenever_anyone_is_free() -> None:
    scenario = dataclasses.replace(BUSY, instant=True, load=0.6, block_fraction=0.3)
    world, result = _run(BLAST, scenario)
    shifts = {m.index: m.shifts for m in world.mitras}
    load: dict[int, int] = defaultdict(int)
    failures = 0
    for entry in result.log:
        kind = entry[1]
        if kind == "match":
            load[entry[3]] += 1
        elif kind == "session_end":
            load[entry[3]] -= 1
        elif kind == "end" and entry[3] != MATCHED:
            t, rid, reason = entry[0], entry[2], entry[4]
            assert reason == "no_available_mitra", (rid, reason)
            assert t == world.requests[rid].arrival  # failed at once, never after waiting
            blocked = world.requests[rid].blocked
            for m, spans in shifts.items():
                on = any(a <= t < b for a, b in spans)
                assert not on or m in blocked or load[m] >= world.mitras[m].capacity, (rid, m)
            failures += 1
    matched = [r for r in result.requests if r.status == MATCHED]
    assert all(r.matched_at == r.spec.arrival for r in matched)  # instant: matched at payment
    assert failures > 0 and matched  # both branches exercised at this load


def _outcomes(result: RunResult) -> list[tuple[str, str, int, float]]:
    return [(r.status, r.reason, r.mitra, r.ended_at) for r in result.requests]


def test_waves_with_k_at_least_the_pool_equal_blast_to_all() -> None:
    world = build_world(11, BLOCKY)
    blast = simulate(world, BLAST)
    # Everyone in the first wave, no second wave and offers open until the timeout, as in a blast.
    waves = Policy("waves", "waves", wave_size=10_000, wave_interval=10_000.0, offer_window=61.0)
    result = simulate(world, waves)
    assert _outcomes(result) == _outcomes(blast)
    assert result.offers == blast.offers
    # Not vacuous: matches and failures of more than one kind (timeout, all declined, nobody free).
    assert MATCHED in {r.status for r in blast.requests}
    assert len({r.reason for r in blast.requests if r.status == FAILED}) >= 2


def test_queue_with_no_max_wait_equals_waves() -> None:
    world = build_world(5, BUSY)
    waves = simulate(world, WAVES)
    no_queue = simulate(world, dataclasses.replace(QUEUE, max_wait=0.0))
    assert _outcomes(no_queue) == _outcomes(waves)
    assert any(r.reason == "no_mitra" for r in waves.requests)


def test_the_queue_never_serves_out_of_order() -> None:
    world, result = _run(QUEUE, BLOCKY)
    queued: set[int] = set()
    declined: dict[int, set[int]] = defaultdict(set)
    live: dict[int, set[int]] = defaultdict(set)  # mitra -> requests with a live offer
    queue_offers = 0
    joined_behind = 0
    log = result.log
    for i, entry in enumerate(log):
        kind = entry[1]
        if kind == "arrive" and queued:
            # Someone is waiting: a new request queues behind them at once, with no waves.
            assert log[i + 1][1:3] == ("queued", entry[2]) and log[i + 1][0] == entry[0]
            joined_behind += 1
        elif kind == "queued":
            queued.add(entry[2])
        elif kind == "end":
            rid = entry[2]
            queued.discard(rid)
            for offers in live.values():
                offers.discard(rid)
        elif kind == "decline" or (kind == "accept" and entry[4] == "full"):
            declined[entry[2]].add(entry[3])
            live[entry[3]].discard(entry[2])
        elif kind in ("missed", "withdrawn") or (kind == "accept" and entry[4] == "won"):
            live[entry[3]].discard(entry[2])
        elif kind == "offer":
            _t, _k, rid, m, via = entry
            if via == "queue" or not live[m]:
                # A free mitra is always offered the oldest queued request it may serve.
                older = [
                    q
                    for q in queued
                    if q < rid and m not in world.requests[q].blocked and m not in declined[q]
                ]
                assert not older, f"t={entry[0]}: mitra {m} offered {rid} while {sorted(older)} waited"
            if via == "queue":
                assert rid in queued
                queue_offers += 1
            live[m].add(rid)
    assert queue_offers > 50 and joined_behind > 10
    positions = [e[3] for e in _entries(result, "queued")]
    assert max(positions) > 3  # a real queue formed


def test_missed_offers_in_a_row_pause_the_mitra() -> None:
    policy = dataclasses.replace(QUEUE, missed_pause=2)
    _world, result = _run(policy)
    streak: dict[int, int] = defaultdict(int)
    paused: set[int] = set()
    pauses = 0
    for i, entry in enumerate(result.log):
        kind = entry[1]
        if kind in ("decline", "accept") and entry[4:] != ("taken",) and entry[4:] != ("closed",):
            streak[entry[3]] = 0
        elif kind == "missed":
            m = entry[3]
            streak[m] += 1
            if streak[m] >= 2:
                # The pause follows at the same instant, before anything else is offered.
                nxt = next(e for e in result.log[i + 1 :] if e[1] in ("pause", "offer"))
                assert nxt[1] == "pause" and nxt[2] == m and nxt[0] == entry[0]
        elif kind == "pause":
            paused.add(entry[2])
            pauses += 1
        elif kind in ("resume", "online"):
            paused.discard(entry[2])
            streak[entry[2]] = 0
        elif kind == "offer":
            assert entry[3] not in paused, f"paused mitra {entry[3]} offered at t={entry[0]}"
    assert pauses > 0


def test_no_offers_during_the_wrap_up_cooldown() -> None:
    policy = dataclasses.replace(QUEUE, cooldown=120.0)
    _world, result = _run(policy)
    last_end: dict[int, float] = {}
    checked = 0
    for entry in result.log:
        if entry[1] == "session_end":
            last_end[entry[3]] = entry[0]
        elif entry[1] == "offer" and entry[3] in last_end:
            assert entry[0] >= last_end[entry[3]] + 120.0
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_deterministic_per_seed(policy: Policy) -> None:
    _w, first = _run(policy, seed=3)
    _w, again = _run(policy, seed=3)
    _w, other = _run(policy, seed=4)
    assert first.log == again.log
    assert _outcomes(first) == _outcomes(again)
    assert _outcomes(first) != _outcomes(other)


def test_queue_reports_position_and_eta() -> None:
    _world, result = _run(QUEUE)
    queued = [r for r in result.requests if r.queued]
    assert queued
    for r in queued:
        assert r.position >= 1 and r.eta is not None and all(e > 0 for e in r.eta)
        if r.status == FAILED:
            assert r.reason == "queue_timeout" and r.ended_at == pytest.approx(
                r.spec.arrival + QUEUE.max_wait
            )
        assert r.status != MATCHED or r.matched_at - r.spec.arrival <= QUEUE.max_wait


def test_quick_mode_prints_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--quick", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    for policy in run.POLICIES:
        assert f"| {policy.name} |" in out
    assert "| waves + queue | little |" in out


def test_blast_follows_todays_pairing_rules() -> None:
    """docs/pairing.md: everyone available is offered at payment and nobody later; all declined ends
    at once (no_mitra); no accept within the blast timeout ends at the timeout."""
    world, result = _run(BLAST)
    offer_times: dict[int, set[float]] = defaultdict(set)
    last_answer: dict[int, float] = {}
    for entry in result.log:
        if entry[1] == "offer":
            offer_times[entry[2]].add(entry[0])
        elif entry[1] in ("decline", "accept"):
            last_answer[entry[2]] = entry[0]
    reasons: dict[str, int] = defaultdict(int)
    for r in result.requests:
        spec = world.requests[r.spec.index]
        if r.attempts:
            assert offer_times[spec.index] == {spec.arrival}
        reasons[r.reason] += 1
        if r.reason == "no_mitra":
            assert r.ended_at == last_answer[spec.index] < spec.arrival + BLAST.blast_timeout
        elif r.reason == "timeout":
            assert r.ended_at == spec.arrival + BLAST.blast_timeout
        elif r.reason == "no_available_mitra":
            assert r.ended_at == spec.arrival and not r.attempts
    assert reasons["timeout"] and reasons["matched"]
