"""Every periodic schedule, by name, declared in code.

`manage.py sync_beat_schedule` upserts these into django-celery-beat's tables by name (never wipes
other rows), so ops can still pause one in the admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class PeriodicSchedule:
    name: str
    task: str
    every_seconds: int


def schedules() -> list[PeriodicSchedule]:
    return [
        PeriodicSchedule(
            "availability.auto_offline_sweep",
            "availability.auto_offline_sweep",
            settings.MITRA_AUTO_OFFLINE_SWEEP_SECONDS,
        ),
        PeriodicSchedule(
            "availability.heartbeat_mirror",
            "availability.heartbeat_mirror",
            settings.HEARTBEAT_MIRROR_INTERVAL_SECONDS,
        ),
        PeriodicSchedule(
            "availability.reconcile",
            "availability.reconcile",
            settings.VALKEY_ONLINE_MIRROR_SWEEP_SECONDS,
        ),
        PeriodicSchedule(
            "accounts.revoked_logins_publish",
            "accounts.revoked_logins_publish",
            settings.REVOKED_LOGINS_PUBLISH_SECONDS,
        ),
        PeriodicSchedule(
            "sessions_app.deadline_sweep",
            "sessions_app.deadline_sweep",
            settings.SESSION_DEADLINE_SWEEP_SECONDS,
        ),
        PeriodicSchedule(
            "sessions_app.pairing_deadline_sweep",
            "sessions_app.pairing_deadline_sweep",
            settings.PAIRING_DEADLINE_SWEEP_SECONDS,
        ),
        PeriodicSchedule(
            "sessions_app.pairing_queue_sweep",
            "sessions_app.pairing_queue_sweep",
            settings.PAIRING_DEADLINE_SWEEP_SECONDS,
        ),
        PeriodicSchedule(
            # Lost mitras (docs/reliability.md "Lost mitra"): due reroutes, and sessions to reroute.
            "sessions_app.reroute_sweep",
            "sessions_app.reroute_sweep",
            settings.SESSION_DEADLINE_SWEEP_SECONDS,
        ),
        PeriodicSchedule(
            # The socket event log keeps EVENT_REPLAY_WINDOW (15 min); rows past it go every 5 min.
            "sessions_app.user_events_prune",
            "sessions_app.user_events_prune",
            int(getattr(settings, "EVENT_LOG_PRUNE_SECONDS", 300)),
        ),
        PeriodicSchedule(
            "payments.expire_stale_payments",
            "payments.expire_stale_payments",
            settings.PAYMENT_SWEEP_SECONDS,
        ),
        PeriodicSchedule(
            "sessions_app.reconcile_confirmed_payments",
            "sessions_app.reconcile_confirmed_payments",
            settings.PAYMENT_SWEEP_SECONDS,
        ),
        # Care: re-send undelivered crisis alerts and apply the retention policy (docs/care.md).
        PeriodicSchedule("care.sweep", "care.sweep", 300),
    ]
