"""Compare matching policies over simulated days; sweep their parameters.

    python -m bench matching                 # the policies, 5 seeds (~25 s on one core)
    python -m bench matching --sweep         # + one-at-a-time sweeps of K, T, W, max wait, N, cooldown,
                                             #   ranking weights (3 seeds each)
    python -m bench matching --load          # + the policies at 0.8x / 1.2x demand, 6 / 24 min patience
    python -m bench matching --all           # everything (~4 min)
    python -m bench matching --quick         # a small world, 2 seeds (seconds; used by the tests)

Markdown tables on stdout: mean over seeds and (min–max). docs/matching.md holds the results and
the reasoning. Stdlib only; deterministic per seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence

from bench.matching.metrics import ETA_METHODS, Metrics, measure, spread
from bench.matching.model import Scenario, World, build_world
from bench.matching.sim import Policy, simulate

BLAST = Policy("blast-to-all (today)", "blast")
# The chosen defaults (docs/matching.md, "Chosen defaults"), and the same without the missed-offers
# pause and the cooldown, to show what each part does on its own.
WAVES = Policy("waves", "waves", wave_size=5, wave_interval=10.0, wave_growth=1, offer_window=45.0)
WAVES_FULL = dataclasses.replace(WAVES, name="waves + pause + cooldown", missed_pause=5, cooldown=30.0)
QUEUE = dataclasses.replace(WAVES, name="waves + queue", kind="queue", max_wait=600.0)
CHOSEN = dataclasses.replace(
    QUEUE, name="waves + queue + pause + cooldown (chosen)", missed_pause=5, cooldown=30.0
)
POLICIES = (BLAST, WAVES, WAVES_FULL, QUEUE, CHOSEN)

QUICK = Scenario(mitras=100, load=0.2)


# A world is a pure function of (seed, scenario), so that pair names it.
_CACHE: dict[tuple[int, Scenario, Policy], Metrics] = {}


def _runs(worlds: Sequence[World], policy: Policy) -> list[Metrics]:
    """One Metrics per world (cached: a sweep's chosen row is the same run as the baseline)."""
    out = []
    for world in worlds:
        key = (world.seed, world.scenario, policy)
        if key not in _CACHE:
            _CACHE[key] = measure(simulate(world, policy))
        out.append(_CACHE[key])
    return out


def _cell(ms: list[Metrics], get: Callable[[Metrics], float], digits: int = 1) -> str:
    return spread([get(m) for m in ms]).fmt(digits)


MAIN_COLUMNS: tuple[tuple[str, Callable[[Metrics], float], int], ...] = (
    ("failed %", lambda m: m.failed_pct, 2),
    ("cancelled %", lambda m: m.cancelled_pct, 2),
    ("unserved %", lambda m: m.unserved_pct, 2),
    ("wait p50 s", lambda m: m.wait_p50, 1),
    ("wait p90 s", lambda m: m.wait_p90, 1),
    ("offers/session", lambda m: m.offers_per_session, 1),
    ("Gini sessions", lambda m: m.gini_sessions, 3),
    ("Gini per online h", lambda m: m.gini_per_hour, 3),
)
QUEUE_COLUMNS: tuple[tuple[str, Callable[[Metrics], float], int], ...] = (
    ("queued %", lambda m: m.queued_pct, 1),
    ("queued → matched %", lambda m: m.queue_matched_pct, 1),
    ("queue wait p50 s", lambda m: m.queue_wait_p50, 0),
    ("queue wait p90 s", lambda m: m.queue_wait_p90, 0),
    ("missed offers", lambda m: float(m.missed), 0),
    ("pauses", lambda m: float(m.pauses), 0),
)


def _table(
    title: str,
    rows: list[tuple[str, list[Metrics]]],
    columns: Sequence[tuple[str, Callable[[Metrics], float], int]] = MAIN_COLUMNS,
) -> str:
    head = "| " + " | ".join([title, *(c[0] for c in columns)]) + " |"
    rule = "|" + "---|" * (len(columns) + 1)
    body = [
        "| " + " | ".join([name, *(_cell(ms, get, d) for _, get, d in columns)]) + " |" for name, ms in rows
    ]
    return "\n".join([head, rule, *body])


def _eta_table(rows: list[tuple[str, list[Metrics]]]) -> str:
    lines = [
        "| policy | ETA method | MAE s | p90 abs error s | bias s (eta − actual) |",
        "|---|---|---|---|---|",
    ]
    for name, ms in rows:
        for method in ETA_METHODS:
            mae = spread([m.eta_mae[method] for m in ms]).fmt(0)
            p90 = spread([m.eta_p90[method] for m in ms]).fmt(0)
            bias = spread([m.eta_bias[method] for m in ms]).fmt(0)
            lines.append(f"| {name} | {method} | {mae} | {p90} | {bias} |")
    return "\n".join(lines)


def _by_time_of_day(rows: list[tuple[str, list[Metrics]]]) -> str:
    blocks = len(rows[0][1][0].unserved_by_block)
    step = 24 // blocks
    head = "| policy | " + " | ".join(f"{i * step:02d}-{(i + 1) * step:02d}" for i in range(blocks)) + " |"
    lines = [head, "|" + "---|" * (blocks + 1)]
    for name, ms in rows:
        cells = [spread([m.unserved_by_block[i] for m in ms]).fmt(1) for i in range(blocks)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _reasons(rows: list[tuple[str, list[Metrics]]]) -> str:
    lines = ["| policy | why unserved (per day, mean over seeds) |", "|---|---|"]
    for name, ms in rows:
        keys = sorted({k for m in ms for k in m.reasons})
        parts = [f"{k} {sum(m.reasons.get(k, 0) for m in ms) / len(ms):.0f}" for k in keys]
        lines.append(f"| {name} | {', '.join(parts) or '–'} |")
    return "\n".join(lines)


def _sweeps(worlds: Sequence[World]) -> list[str]:
    out: list[str] = []

    def sweep(title: str, variants: list[tuple[str, Policy]], baseline: Policy | None = None) -> None:
        reference = baseline or CHOSEN
        base_runs = _runs(worlds, reference)
        rows = [(name, _runs(worlds, policy)) for name, policy in variants]
        table = _table("value", rows, MAIN_COLUMNS + QUEUE_COLUMNS[:2] + QUEUE_COLUMNS[4:])
        # The same days and answers under both policies: the per-seed difference is the signal.
        lines = table.split("\n")
        lines[0] += " Δ unserved vs base, paired |"
        lines[1] += "---|"
        for i, (_name, ms) in enumerate(rows):
            deltas = [m.unserved_pct - b.unserved_pct for m, b in zip(ms, base_runs, strict=True)]
            lines[i + 2] += f" {spread(deltas).fmt(2)} |"
        out.append(f"### {title}\n\n" + "\n".join(lines))

    r = dataclasses.replace
    base = CHOSEN
    sweep(
        "K (first wave size), waves + pause + cooldown, no queue",
        [(f"K={k}", r(WAVES_FULL, wave_size=k)) for k in (1, 2, 3, 5, 10, 20, 1000)],
        WAVES_FULL,
    )
    sweep("K (first wave size), chosen", [(f"K={k}", r(base, wave_size=k)) for k in (1, 3, 5, 10, 20)])
    sweep(
        "T (seconds between waves) and growth g (wave n offers K·g^n more), chosen",
        [
            (f"T={t:g} g={g}", r(base, wave_interval=t, wave_growth=g))
            for t, g in ((5, 1), (10, 1), (15, 1), (20, 1), (30, 1), (10, 2))
        ],
    )
    sweep(
        "T and g without the queue (waves + pause + cooldown)",
        [
            (f"T={t:g} g={g}", r(WAVES_FULL, wave_interval=t, wave_growth=g))
            for t, g in ((10, 1), (20, 1), (10, 2))
        ],
        WAVES_FULL,
    )
    sweep("W (offer window, s), chosen", [(f"W={w:g}", r(base, offer_window=w)) for w in (20, 30, 45, 60)])
    sweep(
        "max wait (queue), minutes, chosen",
        [(f"{m:g} min", r(base, max_wait=m * 60.0)) for m in (0, 2, 5, 10, 15, 20)],
    )
    sweep(
        "N (missed in a row → paused), chosen",
        [("off", r(base, missed_pause=0)), *((f"N={n}", r(base, missed_pause=n)) for n in (2, 3, 5, 8))],
    )
    sweep(
        "wrap-up cooldown (s), chosen",
        [(f"{c:g} s", r(base, cooldown=float(c))) for c in (0, 30, 60, 120, 300)],
    )
    sweep(
        "ranking weights (previous mitra / idle / few sessions), chosen",
        [
            ("10/1/1 (chosen)", base),
            ("10/1/0 idle only", r(base, weights=(10.0, 1.0, 0.0))),
            ("10/0/1 fewest only", r(base, weights=(10.0, 0.0, 1.0))),
            ("0/1/1 no returning bonus", r(base, weights=(0.0, 1.0, 1.0))),
            ("0/0/0 arbitrary", r(base, weights=(0.0, 0.0, 0.0))),
        ],
    )
    sweep(
        "one live offer per mitra (ablation), chosen",
        [("off (chosen)", base), ("on", r(base, exclusive=True))],
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench matching", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default 5; 2 with --quick)")
    parser.add_argument("--sweep-seeds", type=int, default=3)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--load", action="store_true", help="also 0.8x / 1.2x demand, 6 / 24 min patience")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a small world (100 mitras, 0.2x demand)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    scenario = QUICK if args.quick else Scenario()
    seeds = list(range(1, (args.seeds or (2 if args.quick else 5)) + 1))
    worlds = [build_world(seed, scenario) for seed in seeds]
    print(
        f"# Matching simulation: {scenario.mitras} mitras, demand x{scenario.load}, seeds {seeds[0]}..{seeds[-1]}\n"
    )
    per_day = [sum(1 for r in w.requests if r.arrival >= 0) for w in worlds]
    print(f"{sum(per_day) / len(per_day):.0f} paid requests per simulated day (mean over seeds).\n")
    rows = [(p.name, _runs(worlds, p)) for p in POLICIES]
    print("## Policies\n")
    print(_table("policy", rows))
    print()
    print(_table("policy", rows, QUEUE_COLUMNS))
    print()
    print(_reasons(rows))
    print("\n## Unserved % by time of day (WIB, by payment time)\n")
    print(_by_time_of_day(rows))
    print("\n## Queue ETA (at queue entry, requests matched from the queue)\n")
    print(_eta_table([row for row in rows if "queue" in row[0]]))
    if args.load or args.all:
        for load in (0.8, 1.2):
            loaded = [
                build_world(seed, dataclasses.replace(scenario, load=scenario.load * load)) for seed in seeds
            ]
            print(f"\n## Demand x{load}\n")
            print(_table("policy", [(p.name, _runs(loaded, p)) for p in POLICIES]))
    if args.load or args.all:
        for minutes in (6, 24):
            patient = [
                build_world(seed, dataclasses.replace(scenario, patience_mean=minutes * 60.0))
                for seed in seeds
            ]
            print(f"\n## Customer patience: mean {minutes} min (reference 12)\n")
            print(_table("policy", [(p.name, _runs(patient, p)) for p in (BLAST, QUEUE, CHOSEN)]))
    if args.sweep or args.all:
        sweep_worlds = worlds[: args.sweep_seeds]
        print(
            f"\n## Sweeps (one parameter at a time around the chosen defaults, seeds 1..{len(sweep_worlds)})\n"
        )
        for block in _sweeps(sweep_worlds):
            print(block)
            print()
    print(f"\n(run took {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
