"""What one run measured, and the spread over seeds."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass

from bench.matching.sim import FAILED, MATCHED, RunResult

ETA_METHODS = ("starts", "departures", "little")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def gini(values: list[float]) -> float:
    """0 = everyone equal, 1 = one takes all."""
    xs = sorted(v for v in values)
    total = sum(xs)
    n = len(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return 2.0 * weighted / (n * total) - (n + 1.0) / n


@dataclass(frozen=True)
class Metrics:
    requests: int
    failed_pct: float
    cancelled_pct: float
    unserved_pct: float  # failed + cancelled
    reasons: dict[str, int]
    wait_p50: float
    wait_p90: float
    offers_per_session: float
    offers_per_online_hour: float
    gini_sessions: float
    gini_per_hour: float
    queued_pct: float
    queue_matched_pct: float  # of the queued
    queue_wait_p50: float
    queue_wait_p90: float
    eta_mae: dict[str, float]
    eta_p90: dict[str, float]
    eta_bias: dict[str, float]
    missed: int
    pauses: int
    unserved_by_block: tuple[float, ...]  # unserved % per 3-hour block of the day, 00-03 first


BLOCK_HOURS = 3


def measure(result: RunResult) -> Metrics:
    reqs = result.measured
    n = len(reqs) or 1
    matched = [r for r in reqs if r.status == MATCHED]
    failed = [r for r in reqs if r.status == FAILED]
    cancelled = [r for r in reqs if r.status not in (MATCHED, FAILED)]
    waits = [r.matched_at - r.spec.arrival for r in matched]
    present = [i for i, h in enumerate(result.online_hours) if h > 0]
    sessions = [float(result.sessions[i]) for i in present]
    per_hour = [result.sessions[i] / result.online_hours[i] for i in present]
    queued = [r for r in reqs if r.queued]
    from_queue = [r for r in queued if r.status == MATCHED]
    queue_waits = [r.matched_at - r.queued_at for r in from_queue]
    mae: dict[str, float] = {}
    p90: dict[str, float] = {}
    bias: dict[str, float] = {}
    for k, name in enumerate(ETA_METHODS):
        errors = [r.eta[k] - (r.matched_at - r.queued_at) for r in from_queue if r.eta is not None]
        mae[name] = statistics.fmean(abs(e) for e in errors) if errors else math.nan
        p90[name] = percentile([abs(e) for e in errors], 90)
        bias[name] = statistics.fmean(errors) if errors else math.nan
    online_hours = sum(result.online_hours) or 1.0
    per_block: list[list[int]] = [[0, 0] for _ in range(24 // BLOCK_HOURS)]
    for r in reqs:
        block = per_block[min(int(r.spec.arrival // (BLOCK_HOURS * 3_600)), len(per_block) - 1)]
        block[0] += 1
        block[1] += r.status != MATCHED
    by_block = tuple(100.0 * bad / total if total else math.nan for total, bad in per_block)
    return Metrics(
        requests=len(reqs),
        failed_pct=100.0 * len(failed) / n,
        cancelled_pct=100.0 * len(cancelled) / n,
        unserved_pct=100.0 * (len(failed) + len(cancelled)) / n,
        reasons=dict(Counter(r.reason for r in reqs if r.status != MATCHED)),
        wait_p50=percentile(waits, 50),
        wait_p90=percentile(waits, 90),
        offers_per_session=result.offers / max(1, len(matched)),
        offers_per_online_hour=result.offers / online_hours,
        gini_sessions=gini(sessions),
        gini_per_hour=gini(per_hour),
        queued_pct=100.0 * len(queued) / n,
        queue_matched_pct=100.0 * len(from_queue) / len(queued) if queued else math.nan,
        queue_wait_p50=percentile(queue_waits, 50),
        queue_wait_p90=percentile(queue_waits, 90),
        eta_mae=mae,
        eta_p90=p90,
        eta_bias=bias,
        missed=result.missed,
        pauses=result.pauses,
        unserved_by_block=by_block,
    )


@dataclass(frozen=True)
class Spread:
    mean: float
    low: float
    high: float

    def fmt(self, digits: int = 1) -> str:
        if math.isnan(self.mean):
            return "–"
        if self.high - self.low < 10 ** (-digits) / 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def spread(values: list[float]) -> Spread:
    real = [v for v in values if not math.isnan(v)]
    if not real:
        return Spread(math.nan, math.nan, math.nan)
    return Spread(statistics.fmean(real), min(real), max(real))
