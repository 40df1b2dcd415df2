"""The world of one simulated day, generated from a seed: mitras and paid requests.

Pure data and stdlib only. Every assumption below is a named constant and is documented in
docs/matching.md ("The model"). Times are seconds since 00:00 WIB of the measured day; the world also
holds a warm-up before midnight (`WARMUP`) so the day does not start with an empty system.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

from payments.catalog import DEFAULT_TIERS

DAY = 86_400.0
HOUR = 3_600.0
# Simulated time before 00:00 (yesterday evening): sessions and shifts already running at midnight.
WARMUP = 3 * HOUR

# Paid requests per hour of the day (WIB), relative. Evening-peaked: low 03:00-06:00, a lunch bump,
# rising from 18:00 to a peak at 21:00-23:00, still high past midnight (late-night venting).
ARRIVAL_WEIGHTS: tuple[float, ...] = (
    5.0, 3.5, 2.2, 1.4, 1.0, 1.0, 1.3, 1.8, 2.3, 2.8, 3.2, 3.4,
    3.8, 3.8, 3.4, 3.4, 3.8, 4.4, 5.2, 6.6, 8.2, 9.6, 10.0, 8.4,
)  # fmt: skip
# Paid requests in one day at load 1.0 (before the load multiplier).
DAILY_REQUESTS = 4_000

# Shift starts per hour of the day, relative: part-time mitras (students, workers after office
# hours) start mostly 17:00-21:00, with a daytime cohort; few start after midnight.
SHIFT_START_WEIGHTS: tuple[float, ...] = (
    1.2, 0.7, 0.6, 0.6, 0.8, 1.2, 1.6, 2.5, 3.5, 3.5, 3.0, 2.8,
    3.0, 3.0, 2.8, 3.0, 3.5, 4.5, 5.5, 6.5, 6.5, 5.0, 3.0, 1.8,
)  # fmt: skip
SHIFT_HOURS = (2.0, 5.0)  # uniform
SECOND_SHIFT_FRACTION = 0.35
CAPACITY_TWO_FRACTION = 0.10  # mitras who set their own capacity to 2 (ops maximum 2)

# Tier mix over payments.catalog.DEFAULT_TIERS (mode, minutes) -> share of paid requests.
TIER_MIX: dict[tuple[str, int], float] = {
    ("chat", 15): 0.30,
    ("chat", 30): 0.30,
    ("chat", 45): 0.10,
    ("chat", 60): 0.08,
    ("call", 15): 0.10,
    ("call", 30): 0.08,
    ("call", 45): 0.02,
    ("call", 60): 0.02,
}
EXTENSION_FRACTION = 0.12  # one paid extension of 15 minutes
EARLY_END_FRACTION = 0.08  # customer ends at 40-90 % of the paid time
GOODBYE_FRACTION = 0.75  # customer says goodbye within 15-120 s; otherwise the 300 s grace runs out
CLOSING_GRACE = 300.0  # opsconfig closing_grace_seconds default

RETURNING_FRACTION = 0.35  # requests from customers who had a session before
RETURNING_SAME_HOURS = 0.6  # ... whose previous mitra is online now (same habits), else anyone
BLOCK_FRACTION = 0.03  # customers who blocked 1-3 mitras
# Patience: a customer who just paid waits at least this long, then gives up at an exponential rate.
PATIENCE_FLOOR = 45.0
PATIENCE_MEAN = 12 * 60.0


@dataclass(frozen=True)
class Responsiveness:
    """One class of mitra behaviour while online.

    `away_*`: alternating attentive / away spells (exponential lengths, minutes): away = the app is
    open (heartbeat fresh, counted available) but nobody looks at it. `latency_median`: seconds from
    seeing an offer to answering (lognormal, sigma `LATENCY_SIGMA`). `accept`: probability an answer
    is an accept. `slip`: probability an attentive mitra still never answers.
    """

    name: str
    share: float
    attentive_minutes: float
    away_minutes: float
    latency_median: float
    accept: float
    slip: float


CLASSES: tuple[Responsiveness, ...] = (
    Responsiveness("prompt", 0.45, 60.0, 4.0, 6.0, 0.85, 0.02),
    Responsiveness("typical", 0.40, 40.0, 8.0, 12.0, 0.75, 0.05),
    Responsiveness("ghost", 0.15, 15.0, 25.0, 20.0, 0.60, 0.15),
)
LATENCY_SIGMA = 0.7
# A mitra offered a request while already in a chat (capacity 2), or within BREATHER seconds of a
# session ending, accepts with this factor of their usual probability.
BUSY_ACCEPT_FACTOR = 0.5
BREATHER = 120.0
BREATHER_ACCEPT_FACTOR = 0.5
# A paused mitra notices the push and comes back this long (mean, exponential) after they look at
# the phone again, if their shift is still on.
PAUSE_NOTICE_MEAN = 3 * 60.0


@dataclass(frozen=True)
class Scenario:
    """What varies between worlds besides the seed."""

    mitras: int = 500
    load: float = 1.0
    returning_fraction: float = RETURNING_FRACTION
    block_fraction: float = BLOCK_FRACTION
    capacity_two_fraction: float = CAPACITY_TWO_FRACTION
    # Everyone answers every offer at once with an accept and is never away (a test world).
    instant: bool = False
    # Simulated span: None = the whole day plus warm-up; a shorter span for tests.
    hours: float | None = None
    blocked_per_customer: tuple[int, int] = (1, 3)
    patience_mean: float = PATIENCE_MEAN


@dataclass
class MitraSpec:
    index: int
    klass: str
    capacity: int
    latency_median: float
    accept: float
    slip: float
    shifts: list[tuple[float, float]]
    away: list[tuple[float, float]] = field(default_factory=list)
    _away_starts: list[float] = field(default_factory=list, repr=False)

    def away_until(self, t: float) -> float:
        """End of the away spell covering t, or t if the mitra is attentive at t."""
        i = bisect.bisect_right(self._away_starts, t) - 1
        if i >= 0 and self.away[i][1] > t:
            return self.away[i][1]
        return t

    def online_seconds(self, start: float, end: float) -> float:
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.shifts)


@dataclass(frozen=True)
class RequestSpec:
    index: int
    arrival: float
    mode: str
    minutes: int
    occupancy: float  # seconds the accepted session holds the mitra's capacity
    previous_mitra: int  # -1: a first-time customer
    blocked: frozenset[int]
    patience: float


@dataclass
class World:
    seed: int
    scenario: Scenario
    start: float
    end: float
    mitras: list[MitraSpec]
    requests: list[RequestSpec]


def _curve(weights: tuple[float, ...], t: float) -> float:
    """Hourly weights, linear between hour midpoints, wrapping around midnight."""
    x = (t % DAY) / HOUR - 0.5
    i = math.floor(x)
    frac = x - i
    return weights[i % 24] * (1 - frac) + weights[(i + 1) % 24] * frac


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _shift_start(rng: random.Random) -> float:
    hour = rng.choices(range(24), weights=SHIFT_START_WEIGHTS)[0]
    return (hour + rng.random()) * HOUR


def _shifts(rng: random.Random, start: float, end: float) -> list[tuple[float, float]]:
    """One or two shifts of a daily pattern, repeated yesterday and today, clipped to the span."""
    pattern = []
    for _ in range(2 if rng.random() < SECOND_SHIFT_FRACTION else 1):
        begin = _shift_start(rng)
        pattern.append((begin, begin + rng.uniform(*SHIFT_HOURS) * HOUR))
    spans = [(a + day, b + day) for a, b in pattern for day in (-DAY, 0.0)]
    clipped = [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end]
    return _merge(clipped)


def _away_spells(
    rng: random.Random, klass: Responsiveness, start: float, end: float
) -> list[tuple[float, float]]:
    on_mean = klass.attentive_minutes * 60.0
    off_mean = klass.away_minutes * 60.0
    t = start
    away = rng.random() < off_mean / (on_mean + off_mean)
    spells = []
    while t < end:
        length = rng.expovariate(1.0 / (off_mean if away else on_mean))
        if away:
            spells.append((t, t + length))
        t += length
        away = not away
    return spells


def _occupancy(rng: random.Random, minutes: int) -> float:
    paid = minutes * 60.0
    if rng.random() < EXTENSION_FRACTION:
        paid += 15 * 60.0
    if rng.random() < EARLY_END_FRACTION:
        paid *= rng.uniform(0.4, 0.9)
    closing = rng.uniform(15.0, 120.0) if rng.random() < GOODBYE_FRACTION else CLOSING_GRACE
    return paid + closing


def build_world(seed: int, scenario: Scenario | None = None) -> World:
    """Every random choice of the day except the per-offer answers (see `offer_draws`)."""
    sc = scenario or Scenario()
    rng = random.Random(seed)
    start = -WARMUP
    end = DAY if sc.hours is None else sc.hours * HOUR
    if sc.hours is not None:
        start = 0.0

    tiers = {(mode, minutes) for mode, minutes, _price in DEFAULT_TIERS}
    missing = set(TIER_MIX) - tiers
    if missing:
        raise ValueError(f"tier mix names tiers the catalog does not have: {sorted(missing)}")
    tier_keys = list(TIER_MIX)
    tier_weights = [TIER_MIX[k] for k in tier_keys]

    mitras: list[MitraSpec] = []
    class_weights = [k.share for k in CLASSES]
    for index in range(sc.mitras):
        klass = rng.choices(CLASSES, weights=class_weights)[0]
        shifts = _shifts(rng, start, end)
        spec = MitraSpec(
            index=index,
            klass=klass.name,
            capacity=2 if rng.random() < sc.capacity_two_fraction else 1,
            latency_median=klass.latency_median * rng.uniform(0.7, 1.4),
            accept=min(1.0, klass.accept * rng.uniform(0.9, 1.1)),
            slip=klass.slip,
            shifts=shifts,
        )
        if sc.instant:
            spec.latency_median, spec.accept, spec.slip = 0.0, 1.0, 0.0
        else:
            spec.away = _away_spells(rng, klass, start, end + 2 * HOUR)
        spec._away_starts = [a for a, _ in spec.away]
        mitras.append(spec)

    # Non-homogeneous Poisson arrivals by thinning against the peak rate.
    total_weight = sum(ARRIVAL_WEIGHTS) * HOUR
    per_second = DAILY_REQUESTS * sc.load / total_weight
    peak = max(ARRIVAL_WEIGHTS) * per_second
    requests: list[RequestSpec] = []
    t = start
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            break
        if rng.random() * peak > _curve(ARRIVAL_WEIGHTS, t) * per_second:
            continue
        mode, minutes = rng.choices(tier_keys, weights=tier_weights)[0]
        previous = -1
        if rng.random() < sc.returning_fraction:
            online = [m.index for m in mitras if any(a <= t < b for a, b in m.shifts)]
            if online and rng.random() < RETURNING_SAME_HOURS:
                previous = rng.choice(online)
            else:
                previous = rng.randrange(sc.mitras)
        blocked: frozenset[int] = frozenset()
        if rng.random() < sc.block_fraction:
            low, high = sc.blocked_per_customer
            blocked = frozenset(rng.sample(range(sc.mitras), min(sc.mitras, rng.randint(low, high))))
        requests.append(
            RequestSpec(
                index=len(requests),
                arrival=t,
                mode=mode,
                minutes=minutes,
                occupancy=_occupancy(rng, minutes),
                previous_mitra=previous if previous not in blocked else -1,
                blocked=blocked,
                patience=PATIENCE_FLOOR + rng.expovariate(1.0 / sc.patience_mean),
            )
        )
    return World(seed=seed, scenario=sc, start=start, end=end, mitras=mitras, requests=requests)


# --- per-offer answers: a pure function of (seed, request, mitra, attempt) ---------------------------
# The same offer gets the same answer under every policy (common random numbers): differences between
# policies are the policies', not the dice's, and "waves with K >= pool" can equal blast exactly.

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def offer_draws(seed: int, request: int, mitra: int, attempt: int) -> tuple[float, float, float, float]:
    """Four uniforms in (0, 1) for one offer."""
    h = _mix(_mix(_mix(seed & _MASK) ^ request) ^ (mitra * 64 + attempt))
    g = _mix(h)
    scale = 1.0 / 4_294_967_296.0
    return (
        ((h >> 32) + 0.5) * scale,
        ((h & 0xFFFFFFFF) + 0.5) * scale,
        ((g >> 32) + 0.5) * scale,
        ((g & 0xFFFFFFFF) + 0.5) * scale,
    )


def lognormal(median: float, u1: float, u2: float) -> float:
    """Box-Muller from two uniforms."""
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return median * math.exp(LATENCY_SIGMA * z)
