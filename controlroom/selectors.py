"""What the control room shows: the dashboard, its 24-hour charts, live sessions, mitra activity.

Reads only. Mitra presence comes from availability's readers (Valkey first, Postgres when Valkey cannot
vouch, and the page says which); everything else is a handful of aggregate SQL queries on the tables
of the apps below (docs/control-room.md "Dashboard"; cost measured in bench/controlroom).
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
import zoneinfo
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from availability.readers import dashboard_counts, find_available_mitras
from mitras.models import Mitra, MitraOnlineLog, MitraOnlineStatus, OnlineEvent
from opsconfig.services import config_get
from payments.models import PaymentRequest, PaymentStatus, RefundCase, RefundStatus
from sessions_app.models import (
    CAPACITY_STATUSES,
    ChatRequestNotification,
    ChatSession,
    ExtensionStatus,
    NotificationResponse,
    SessionExtension,
    SessionStatus,
    TopicSensitivity,
)

SESSION_COUNT_STATUSES = (
    SessionStatus.SEARCHING,
    SessionStatus.TARGETED_REJECTED,
    SessionStatus.PENDING_PAYMENT,
    SessionStatus.ACTIVE,
    SessionStatus.EXTENDING,
    SessionStatus.CLOSING,
)
FAILED_STATUSES = (SessionStatus.NO_MITRA, SessionStatus.CANCELLED)


def business_day_start(now: dt.datetime | None = None) -> dt.datetime:
    """Midnight of today in the business time zone (settings.CONTROLROOM_DAY_TIMEZONE), as UTC."""
    tz = zoneinfo.ZoneInfo(settings.CONTROLROOM_DAY_TIMEZONE)
    local = (now or timezone.now()).astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


@dataclass(frozen=True)
class DashboardData:
    mitras: dict[str, int]
    mitras_source: str
    sessions: dict[str, int]
    pending_payments: int
    today_sessions: int
    today_revenue: int  # integer rupiah
    # Refund cases ops still have to work (pending review, or approved and not yet refunded).
    refund_cases_waiting: int = 0
    # Paid requests waiting in matching's queue (searching, queued_at set).
    queued: int = 0
    generated_at: str = field(default_factory=lambda: timezone.now().isoformat())

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def dashboard_get(*, now: dt.datetime | None = None) -> DashboardData:
    """Every live count of the dashboard (one Valkey pipeline or the Postgres fallback + 4 SQL)."""
    now = now or timezone.now()
    presence = dashboard_counts()
    cfg = config_get()
    # Stale = marked online but no heartbeat since the cutoff; the sweep turns them offline. Counted
    # with the presence counts (Valkey's pings; Postgres' lag them by minutes: availability.services).
    stale = presence.stale
    # Busy = online, active mitras at capacity: their loads from the sessions table (the truth).
    at_capacity = (
        ChatSession.objects.filter(status__in=CAPACITY_STATUSES, mitra__isnull=False)
        .values("mitra_id")
        .annotate(load=Count("id"))
        .filter(load__gte=cfg.max_customers_per_mitra)
        .values("mitra_id")
    )
    busy = MitraOnlineStatus.objects.filter(
        is_online=True, mitra__is_active=True, mitra_id__in=at_capacity
    ).count()
    by_status = dict(
        ChatSession.objects.filter(status__in=SESSION_COUNT_STATUSES)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    day_start = business_day_start(now)
    today_sessions = ChatSession.objects.filter(created_at__gte=day_start).count()
    revenue = PaymentRequest.objects.filter(
        status=PaymentStatus.CONSUMED, confirmed_at__gte=day_start
    ).aggregate(total=Sum("amount"))["total"]
    return DashboardData(
        mitras={
            "online": presence.online,
            "available": presence.available,
            "busy": busy,
            "stale": stale,
            "deactivated": presence.deactivated,
        },
        mitras_source=presence.source,
        sessions={
            "searching": by_status.get(SessionStatus.SEARCHING, 0)
            + by_status.get(SessionStatus.TARGETED_REJECTED, 0),
            "pending_payment": by_status.get(SessionStatus.PENDING_PAYMENT, 0),
            "active": by_status.get(SessionStatus.ACTIVE, 0),
            "extending": by_status.get(SessionStatus.EXTENDING, 0),
            "closing": by_status.get(SessionStatus.CLOSING, 0),
        },
        pending_payments=PaymentRequest.objects.filter(status=PaymentStatus.PENDING).count(),
        today_sessions=today_sessions,
        today_revenue=int(revenue or 0),
        refund_cases_waiting=RefundCase.objects.filter(
            status__in=(RefundStatus.PENDING_REVIEW, RefundStatus.APPROVED)
        ).count(),
        queued=ChatSession.objects.filter(status=SessionStatus.SEARCHING, queued_at__isnull=False).count(),
    )


@dataclass(frozen=True)
class HourStats:
    hour: dt.datetime
    paid: int
    matched: int
    failed: int
    accept_p50: float | None  # seconds from the blast to the accept
    accept_p90: float | None


_HOURLY_SQL = """
SELECT date_trunc('hour', s.created_at) AS hour,
       count(*) AS paid,
       count(s.started_at) AS matched,
       count(*) FILTER (WHERE s.status = ANY(%(failed)s)) AS failed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.started_at - coalesce(s.blast_started_at, s.created_at)))
           FILTER (WHERE s.started_at IS NOT NULL) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM s.started_at - coalesce(s.blast_started_at, s.created_at)))
           FILTER (WHERE s.started_at IS NOT NULL) AS p90
  FROM chat_sessions s
 WHERE s.created_at >= %(since)s AND s.payment_request_id IS NOT NULL
 GROUP BY 1
"""


def hourly_stats_list(*, now: dt.datetime | None = None, hours: int = 24) -> list[HourStats]:
    """The last `hours` hours (the current one included), oldest first, empty hours as zeros.

    A paid request is a chat session opened for a payment; matched = a mitra accepted; failed = no
    mitra or cancelled before an accept. Time to accept runs from the blast (or the session's creation).
    """
    now = now or timezone.now()
    top = now.replace(minute=0, second=0, microsecond=0)
    since = top - dt.timedelta(hours=hours - 1)
    with connection.cursor() as cur:
        cur.execute(
            _HOURLY_SQL.replace("chat_sessions", ChatSession._meta.db_table),
            {"since": since, "failed": [str(s) for s in FAILED_STATUSES]},
        )
        rows = {r[0]: r for r in cur.fetchall()}
    out = []
    for i in range(hours):
        hour = since + dt.timedelta(hours=i)
        r = rows.get(hour)
        out.append(
            HourStats(
                hour=hour,
                paid=int(r[1]) if r else 0,
                matched=int(r[2]) if r else 0,
                failed=int(r[3]) if r else 0,
                accept_p50=float(r[4]) if r and r[4] is not None else None,
                accept_p90=float(r[5]) if r and r[5] is not None else None,
            )
        )
    return out


# --- live sessions --------------------------------------------------------------------------------

LIVE_PAGE_STATUSES = (
    SessionStatus.SEARCHING,
    SessionStatus.TARGETED_REJECTED,
    SessionStatus.ACTIVE,
    SessionStatus.EXTENDING,
    SessionStatus.CLOSING,
    SessionStatus.REROUTING,
)


@dataclass(frozen=True)
class LiveSessionRow:
    session: ChatSession
    remaining_seconds: int | None


def live_session_list(*, now: dt.datetime | None = None, limit: int = 500) -> list[LiveSessionRow]:
    now = now or timezone.now()
    rows = []
    sessions = (
        ChatSession.objects.filter(status__in=LIVE_PAGE_STATUSES)
        .select_related("mitra", "customer")
        .order_by("expires_at", "created_at")[:limit]
    )
    for s in sessions:
        deadline = s.closing_deadline_at if s.status == SessionStatus.CLOSING else s.expires_at
        if s.status in (SessionStatus.SEARCHING, SessionStatus.TARGETED_REJECTED):
            deadline = s.blast_deadline_at
        if s.status == SessionStatus.REROUTING:
            deadline = None  # the clock is frozen while a new mitra is found
        remaining = max(int((deadline - now).total_seconds()), 0) if deadline else None
        rows.append(LiveSessionRow(session=s, remaining_seconds=remaining))
    return rows


def reroute_candidate_list(*, session: ChatSession) -> list[Mitra]:
    """Available mitras (online, fresh, under capacity) other than the session's own, by name."""
    ids = [m for m in find_available_mitras() if m != session.mitra_id]
    return list(Mitra.objects.filter(pk__in=ids, is_active=True).order_by("display_name")[:500])


# --- mitra activity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MitraActivity:
    mitra: Mitra
    online_seconds: int
    offers: int
    accepted: int
    declined: int
    missed: int
    acceptance_rate: float | None
    median_response_seconds: float | None
    sessions: int
    minutes_served: int
    sensitive_sessions: int
    extensions: int

    def csv_row(self) -> list[Any]:
        return [
            str(self.mitra.pk),
            self.mitra.display_name,
            self.online_seconds,
            self.offers,
            self.accepted,
            self.declined,
            self.missed,
            "" if self.acceptance_rate is None else f"{self.acceptance_rate:.3f}",
            "" if self.median_response_seconds is None else f"{self.median_response_seconds:.1f}",
            self.sessions,
            self.minutes_served,
            self.sensitive_sessions,
            self.extensions,
        ]


ACTIVITY_CSV_HEADER = [
    "mitra_id",
    "display_name",
    "online_seconds",
    "offers",
    "accepted",
    "declined",
    "missed",
    "acceptance_rate",
    "median_response_seconds",
    "sessions",
    "minutes_served",
    "sensitive_sessions",
    "extensions",
]


def _online_seconds(mitra_id: uuid.UUID, start: dt.datetime, end: dt.datetime) -> int:
    """Online time inside [start, end) from the online log (the state at `start` from the last event)."""
    before = MitraOnlineLog.objects.filter(mitra_id=mitra_id, at__lt=start).order_by("-at").first()
    online_since = start if before is not None and before.event == OnlineEvent.ONLINE else None
    total = 0.0
    for ev in MitraOnlineLog.objects.filter(mitra_id=mitra_id, at__gte=start, at__lt=end).order_by("at"):
        if ev.event == OnlineEvent.ONLINE and online_since is None:
            online_since = ev.at
        elif ev.event == OnlineEvent.OFFLINE and online_since is not None:
            total += (ev.at - online_since).total_seconds()
            online_since = None
    if online_since is not None:
        total += (min(end, timezone.now()) - online_since).total_seconds()
    return max(int(total), 0)


def mitra_activity_get(*, mitra: Mitra, start: dt.datetime, end: dt.datetime) -> MitraActivity:
    offers = ChatRequestNotification.objects.filter(mitra=mitra, notified_at__gte=start, notified_at__lt=end)
    counts = offers.aggregate(
        total=Count("id"),
        accepted=Count("id", filter=Q(response=NotificationResponse.ACCEPTED)),
        declined=Count("id", filter=Q(response=NotificationResponse.DECLINED)),
        # Missed = the offer timed out unanswered; "taken by another" and "cancelled" are nobody's miss.
        missed=Count("id", filter=Q(response=NotificationResponse.IGNORED) | Q(response__isnull=True)),
    )
    responses = [
        (responded - notified).total_seconds()
        for notified, responded in offers.filter(responded_at__isnull=False).values_list(
            "notified_at", "responded_at"
        )
        if responded is not None
    ]
    sessions = ChatSession.objects.filter(mitra=mitra, started_at__gte=start, started_at__lt=end)
    served = 0
    for started, ended, expires in sessions.values_list("started_at", "ended_at", "expires_at"):
        if started is None:
            continue
        stop = ended or min(expires or timezone.now(), timezone.now())
        served += max(int((stop - started).total_seconds()), 0)
    total = int(counts["total"])
    accepted = int(counts["accepted"])
    declined = int(counts["declined"])
    return MitraActivity(
        mitra=mitra,
        online_seconds=_online_seconds(mitra.pk, start, end),
        offers=total,
        accepted=accepted,
        declined=declined,
        missed=int(counts["missed"]),
        acceptance_rate=(accepted / total) if total else None,
        median_response_seconds=statistics.median(responses) if responses else None,
        sessions=sessions.count(),
        minutes_served=served // 60,
        sensitive_sessions=sessions.filter(topic_sensitivity=TopicSensitivity.SENSITIVE).count(),
        extensions=SessionExtension.objects.filter(
            session__in=sessions, status__in=(ExtensionStatus.ACCEPTED, ExtensionStatus.AUTO_APPROVED)
        ).count(),
    )


@dataclass(frozen=True)
class TimelineEvent:
    at: dt.datetime
    kind: str  # "online" | "offline" | "offer"
    detail: str


def mitra_timeline_list(*, mitra: Mitra, start: dt.datetime, end: dt.datetime) -> list[TimelineEvent]:
    events = [
        TimelineEvent(at=e.at, kind=e.event, detail=e.get_reason_display())
        for e in MitraOnlineLog.objects.filter(mitra=mitra, at__gte=start, at__lt=end)
    ]
    for n in ChatRequestNotification.objects.filter(mitra=mitra, notified_at__gte=start, notified_at__lt=end):
        answer = n.response or "missed"
        took = f" after {(n.responded_at - n.notified_at).total_seconds():.0f} s" if n.responded_at else ""
        events.append(TimelineEvent(at=n.notified_at, kind="offer", detail=f"{answer}{took}"))
    return sorted(events, key=lambda e: e.at)
