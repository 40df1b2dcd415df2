"""Matching metrics for the control room (issue 14 item 5, docs/matching.md "Metrics").

Read from Postgres (the truth), over a time window, per hour and per mitra. The same quantities are
exported as Prometheus metrics at their call sites (halobestie.metrics: time to first offer, time
to accept, offers sent / accepted / taken / declined / missed, queue joined / wait); those give
rates over any range, these give the breakdown by hour and by mitra that labels could not.

Definitions (paid requests = chat sessions created from a confirmed payment, by creation time;
offers = chat_request_notifications, by `notified_at`):

- time to first offer: payment confirmed (session created) → its first offer (`first_offer_at`).
- time to accept: first offer → a mitra accepted (`started_at`).
- taken rate: paid requests matched with a mitra / paid requests that finished pairing (matched,
  no_mitra or cancelled; still searching ones are left out).
- missed rate: offers that ended unanswered (`ignored`) / offers that ended (answered or not, not
  counting those closed because another mitra won or the customer cancelled).
- queue wait: joined the queue → left it (matched, cancelled or timed out), for queued requests.

Per mitra: offers received, accepted, declined, missed, closed as taken by another, the missed rate,
the accept rate and the median time from offer to answer.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sessions_app.models import ChatRequestNotification, ChatSession, NotificationResponse, SessionStatus

ANSWERED_OR_MISSED = (
    NotificationResponse.ACCEPTED,
    NotificationResponse.DECLINED,
    NotificationResponse.IGNORED,
)


@dataclass(frozen=True)
class Percentiles:
    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class HourlyMatching:
    hour: dt.datetime  # start of the hour (UTC)
    paid_requests: int
    matched: int
    failed: int  # no_mitra (incl. queue_timeout)
    cancelled: int
    taken_rate: float | None
    queued: int
    offers_sent: int
    offers_missed: int
    missed_rate: float | None
    time_to_first_offer: Percentiles
    time_to_accept: Percentiles
    queue_wait: Percentiles


@dataclass(frozen=True)
class MitraMatching:
    mitra_id: uuid.UUID
    offers: int
    accepted: int
    declined: int
    missed: int
    taken_by_another: int
    missed_rate: float | None
    accept_rate: float | None
    answer_seconds_median: float | None


def _percentiles(values: list[float]) -> Percentiles:
    if not values:
        return Percentiles(0, None, None)
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank
    return Percentiles(len(ordered), float(statistics.median(ordered)), float(p90))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _hour(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class _Bucket:
    paid: int = 0
    matched: int = 0
    failed: int = 0
    cancelled: int = 0
    queued: int = 0
    sent: int = 0
    missed: int = 0
    ended_offers: int = 0
    first_offer: list[float] = field(default_factory=list)
    accept: list[float] = field(default_factory=list)
    queue: list[float] = field(default_factory=list)


def matching_metrics_list_by_hour(*, since: dt.datetime, until: dt.datetime) -> list[HourlyMatching]:
    """One row per hour in [since, until) that had a paid request or an offer, oldest first."""
    hours: dict[dt.datetime, _Bucket] = defaultdict(_Bucket)
    sessions = ChatSession.objects.filter(
        payment_request__isnull=False, created_at__gte=since, created_at__lt=until
    ).values_list("created_at", "status", "first_offer_at", "started_at", "queued_at", "ended_at")
    for created, status, first_offer, started, queued, ended in sessions:
        b = hours[_hour(created)]
        b.paid += 1
        if started is not None:
            b.matched += 1
        elif status == SessionStatus.NO_MITRA:
            b.failed += 1
        elif status == SessionStatus.CANCELLED:
            b.cancelled += 1
        if first_offer is not None:
            b.first_offer.append((first_offer - created).total_seconds())
            if started is not None:
                b.accept.append((started - first_offer).total_seconds())
        if queued is not None:
            b.queued += 1
            left = started or ended
            if left is not None:
                b.queue.append((left - queued).total_seconds())
    offers = ChatRequestNotification.objects.filter(
        notified_at__gte=since, notified_at__lt=until
    ).values_list("notified_at", "response")
    for notified, response in offers:
        b = hours[_hour(notified)]
        b.sent += 1
        if response in ANSWERED_OR_MISSED:
            b.ended_offers += 1
        if response == NotificationResponse.IGNORED:
            b.missed += 1
    return [
        HourlyMatching(
            hour=hour,
            paid_requests=b.paid,
            matched=b.matched,
            failed=b.failed,
            cancelled=b.cancelled,
            taken_rate=_rate(b.matched, b.matched + b.failed + b.cancelled),
            queued=b.queued,
            offers_sent=b.sent,
            offers_missed=b.missed,
            missed_rate=_rate(b.missed, b.ended_offers),
            time_to_first_offer=_percentiles(b.first_offer),
            time_to_accept=_percentiles(b.accept),
            queue_wait=_percentiles(b.queue),
        )
        for hour, b in sorted(hours.items())
    ]


def matching_metrics_list_by_mitra(
    *, since: dt.datetime, until: dt.datetime, mitra_ids: Sequence[uuid.UUID] | None = None
) -> list[MitraMatching]:
    """One row per mitra offered anything in [since, until), most offers first."""
    rows = ChatRequestNotification.objects.filter(notified_at__gte=since, notified_at__lt=until)
    if mitra_ids is not None:
        rows = rows.filter(mitra_id__in=list(mitra_ids))
    per: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    answer_times: dict[uuid.UUID, list[float]] = defaultdict(list)
    for mitra_id, response, notified, responded in rows.values_list(
        "mitra_id", "response", "notified_at", "responded_at"
    ):
        counts = per[mitra_id]
        counts["offers"] += 1
        counts[str(response)] += 1
        if response in (NotificationResponse.ACCEPTED, NotificationResponse.DECLINED) and responded:
            answer_times[mitra_id].append((responded - notified).total_seconds())
    result = []
    for mitra_id, c in per.items():
        accepted, declined = c[NotificationResponse.ACCEPTED.value], c[NotificationResponse.DECLINED.value]
        missed = c[NotificationResponse.IGNORED.value]
        ended = accepted + declined + missed
        times = answer_times.get(mitra_id, [])
        result.append(
            MitraMatching(
                mitra_id=mitra_id,
                offers=c["offers"],
                accepted=accepted,
                declined=declined,
                missed=missed,
                taken_by_another=c[NotificationResponse.MISSED.value],
                missed_rate=_rate(missed, ended),
                accept_rate=_rate(accepted, ended),
                answer_seconds_median=float(statistics.median(times)) if times else None,
            )
        )
    result.sort(key=lambda m: (-m.offers, str(m.mitra_id)))
    return result
