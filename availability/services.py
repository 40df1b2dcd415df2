"""Availability writes: Postgres first, then best-effort Valkey after commit (docs/availability.md).

A Valkey write that fails is logged and skipped: Postgres already holds the truth, the store
remembers the failure, and the next successful use in this process (or the reconcile sweep)
rebuilds the mirror from Postgres.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from itertools import compress

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import UserType
from accounts.revocation import revoked_logins_publish
from accounts.services.devices import push_notify_users
from availability import selectors, store
from availability.hooks import mitra_maybe_free, mitras_lost
from availability.load import load_source
from halobestie import metrics, realtime
from halobestie.exceptions import AccountInactive, NotFound, ValidationFailed
from halobestie.retry import retry_on_conflict
from mitras.models import Mitra, MitraOnlineLog, MitraOnlineStatus, OnlineEvent, OnlineReason
from mitras.selectors import mitra_is_deactivated
from opsconfig.services import config_get

logger = logging.getLogger(__name__)

# A rebuild takes ~3 s at 100k online; the lock outlives it with room to spare.
RESEED_LOCK_SECONDS = 60
# After a failed attempt to reach Valkey, readers go straight to Postgres for this long, so a hung
# server (socket timeout) costs one request a timeout per second, not every request.
HEAL_BACKOFF_SECONDS = 1.0


def _mirror(action: str, mitra_id: uuid.UUID, fn: Callable[[], object]) -> None:
    """Run a Valkey write about one mitra after commit; never fail the (already committed) change."""

    def run() -> None:
        if store.skip_while_untrusted(mitra_id):
            # The mirror is untrusted until rebuilt; skipping spares the request a Valkey timeout
            # while the server is unreachable. The mitra is remembered: whoever heals re-derives it
            # from Postgres (a rebuild that read Postgres before this commit does not hold it).
            logger.info("availability: mirror untrusted, skipped %s (re-derived when healed)", action)
            return
        try:
            fn()
        except store.StoreUnavailable:
            logger.warning("availability: Valkey unavailable, skipped %s (reconcile heals it)", action)

    transaction.on_commit(run)


# --- capacity ----------------------------------------------------------------------------------


def capacity_recompute(*, mitra_id: uuid.UUID) -> int:
    """Recompute the mitra's load from Postgres and mirror it to Valkey (after commit).

    Derived from the truth every time (never INCR/DECR), so a missed call heals on the next one.
    A session that has just ended starts the wrap-up cooldown (docs/matching.md): until the end of
    the latest session + `mitra_cooldown_seconds`, also derived from the truth.
    """
    load = selectors.mitra_load_orm(mitra_id=mitra_id)
    _cooldown_from_last_session(mitra_id)
    # The mirrored value is counted again after commit: two transitions of one mitra committing
    # close together each see the other's work by then, so the last write is not a stale count.
    _mirror(
        "capacity write",
        mitra_id,
        lambda: store.capacity_write(
            mitra_id=mitra_id, capacity=selectors.mitra_effective_load_orm(mitra_id=mitra_id)
        ),
    )
    mitra_maybe_free(mitra_id=mitra_id)
    return load


def _cooldown_from_last_session(mitra_id: uuid.UUID) -> None:
    seconds = config_get().mitra_cooldown_seconds
    if seconds <= 0:
        return
    released = load_source().last_released_at(mitra_id=mitra_id)
    if released is None:
        return
    until = released + dt.timedelta(seconds=seconds)
    if until <= timezone.now():
        return
    MitraOnlineStatus.objects.filter(mitra_id=mitra_id).exclude(cooldown_until__gte=until).update(
        cooldown_until=until
    )


@transaction.atomic
def mitra_capacity_set(*, mitra_id: uuid.UUID, capacity: int) -> int:
    """The mitra's own capacity, 1 up to the ops maximum (`max_customers_per_mitra`). Mirrored
    after commit; raising it may make the mitra free for the queue. Returns the value set."""
    maximum = config_get().max_customers_per_mitra
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= maximum:
        raise ValidationFailed(f"capacity: must be a whole number from 1 to {maximum}.")
    status = _status_for_update(mitra_id)
    status.capacity = capacity
    status.save(update_fields=["capacity", "updated_at"])
    _mirror(
        "capacity write",
        mitra_id,
        lambda: store.capacity_write(
            mitra_id=mitra_id, capacity=selectors.mitra_effective_load_orm(mitra_id=mitra_id)
        ),
    )
    mitra_maybe_free(mitra_id=mitra_id)
    return capacity


def availability_cooldowns_release() -> int:
    """End the wrap-up cooldowns that are due: the mirror takes the mitra back and the queue hears
    they may be free. Run by the pairing queue sweep (every few seconds). Returns how many."""
    due = list(
        MitraOnlineStatus.objects.filter(cooldown_until__lte=timezone.now()).values_list(
            "mitra_id", flat=True
        )
    )
    for mitra_id in due:
        _cooldown_release(mitra_id)
    return len(due)


@transaction.atomic
def _cooldown_release(mitra_id: uuid.UUID) -> None:
    MitraOnlineStatus.objects.filter(mitra_id=mitra_id, cooldown_until__lte=timezone.now()).update(
        cooldown_until=None
    )
    _mirror(
        "capacity write",
        mitra_id,
        lambda: store.capacity_write(
            mitra_id=mitra_id, capacity=selectors.mitra_effective_load_orm(mitra_id=mitra_id)
        ),
    )
    mitra_maybe_free(mitra_id=mitra_id)


# --- online / offline --------------------------------------------------------------------------


# Lock order for every mitra/status write (docs/security.md "Lock order"): the `mitras` row first
# (FOR NO KEY UPDATE: it does not block the KEY SHARE lock that inserts referencing the mitra
# take), then its `mitra_online_status` row, then inserts (online logs). Never the other way round.


def _mitra_for_update(mitra_id: uuid.UUID) -> Mitra:
    mitra = Mitra.objects.select_for_update(no_key=True).filter(pk=mitra_id).first()
    if mitra is None:
        raise NotFound("Unknown mitra.")
    return mitra


def _status_for_update(mitra_id: uuid.UUID) -> MitraOnlineStatus:
    # The status row normally exists from the mitra's creation; create it if an old row is missing.
    status = MitraOnlineStatus.objects.select_for_update().filter(mitra_id=mitra_id).first()
    if status is None:
        if not Mitra.objects.filter(pk=mitra_id).exists():
            raise NotFound("Unknown mitra.")
        MitraOnlineStatus.objects.get_or_create(mitra_id=mitra_id)
        status = MitraOnlineStatus.objects.select_for_update().get(mitra_id=mitra_id)
    return status


@retry_on_conflict()
@transaction.atomic
def mitra_set_online(*, mitra_id: uuid.UUID, reason: str = OnlineReason.MANUAL) -> bool:
    """Mark the mitra online (a fresh heartbeat included). Returns False if it already was."""
    mitra = _mitra_for_update(mitra_id)
    if not mitra.is_active:
        raise AccountInactive()
    status = _status_for_update(mitra_id)
    now = timezone.now()
    changed = not status.is_online
    status.is_online = True
    status.last_heartbeat_at = now
    if changed:
        status.last_online_at = now
        # Going online (their own action) resets the missed-offers streak (docs/matching.md).
        status.missed_offers_streak = 0
        MitraOnlineLog.objects.create(mitra_id=mitra_id, event=OnlineEvent.ONLINE, at=now, reason=reason)
        mitra_maybe_free(mitra_id=mitra_id)
    status.save(
        update_fields=[
            "is_online",
            "last_online_at",
            "last_heartbeat_at",
            "missed_offers_streak",
            "updated_at",
        ]
    )
    load = selectors.mitra_effective_load_orm(mitra_id=mitra_id)
    stamp = now.timestamp()
    _mirror("online write", mitra_id, lambda: store.online_write(mitra_id=mitra_id, now=stamp, capacity=load))
    return changed


@retry_on_conflict()
@transaction.atomic
def mitra_set_offline(*, mitra_id: uuid.UUID, reason: str = OnlineReason.MANUAL) -> bool:
    """Mark the mitra offline. Returns False if it already was (no log row then)."""
    _mitra_for_update(mitra_id)  # the lock order: mitra, then status
    status = _status_for_update(mitra_id)
    now = timezone.now()
    changed = status.is_online
    if changed:
        status.is_online = False
        status.last_offline_at = now
        status.save(update_fields=["is_online", "last_offline_at", "updated_at"])
        MitraOnlineLog.objects.create(mitra_id=mitra_id, event=OnlineEvent.OFFLINE, at=now, reason=reason)
    # Mirror even when Postgres had nothing to change: it heals a mirror that still says online.
    _mirror("offline write", mitra_id, lambda: store.offline_write(mitra_id=mitra_id))
    return changed


# --- responsiveness: missed offers and the pause (docs/matching.md) -------------------------------


def mitra_offer_answered(*, mitra_id: uuid.UUID) -> None:
    """An accept or a decline (even an AT_CAPACITY accept): the missed streak starts again."""
    MitraOnlineStatus.objects.filter(mitra_id=mitra_id, missed_offers_streak__gt=0).update(
        missed_offers_streak=0
    )


@transaction.atomic
def mitra_offer_missed(*, mitra_id: uuid.UUID) -> bool:
    """An offer reached its window unanswered: +1 in the streak; at `missed_offers_pause_after` in a
    row the mitra goes offline with reason `missed_offers`, is told over the socket
    (`availability_paused`) and by push. Returns True when this call paused the mitra."""
    status = _status_for_update(mitra_id)
    status.missed_offers_streak = min(status.missed_offers_streak + 1, 32767)
    status.save(update_fields=["missed_offers_streak", "updated_at"])
    limit = config_get().missed_offers_pause_after
    if limit <= 0 or status.missed_offers_streak < limit or not status.is_online:
        return False
    if not mitra_set_offline(mitra_id=mitra_id, reason=OnlineReason.MISSED_OFFERS):
        return False
    missed = status.missed_offers_streak
    metrics.MITRAS_PAUSED.inc()
    logger.info("availability: mitra %s paused after %d missed offers", mitra_id, missed)
    transaction.on_commit(lambda: _tell_paused(mitra_id, missed), robust=True)
    return True


def _tell_paused(mitra_id: uuid.UUID, missed: int) -> None:
    realtime.send_to_user(
        "mitra",
        mitra_id,
        {
            "type": "availability_paused",
            "reason": OnlineReason.MISSED_OFFERS.value,
            "missed_in_a_row": missed,
        },
    )
    push_notify_users(
        user_type=UserType.MITRA,
        user_ids=[mitra_id],
        kind="availability_paused",
        title="Kamu kami set offline",
        body=f"{missed} permintaan terlewat berturut-turut. Aktifkan lagi saat kamu siap.",
        data={"type": "availability_paused", "reason": OnlineReason.MISSED_OFFERS.value},
    )


def presence_deactivate(*, mitra_id: uuid.UUID) -> None:
    """mitras.lifecycle effect of a deactivation (inside its transaction): offline with a log row
    if the mitra was online; after commit the mirror puts the mitra in the deactivated set."""
    status = _status_for_update(mitra_id)
    if status.is_online:
        now = timezone.now()
        status.is_online = False
        status.last_offline_at = now
        status.save(update_fields=["is_online", "last_offline_at", "updated_at"])
        MitraOnlineLog.objects.create(
            mitra_id=mitra_id, event=OnlineEvent.OFFLINE, at=now, reason=OnlineReason.DEACTIVATED
        )
    _mirror("deactivate write", mitra_id, lambda: store.offline_write(mitra_id=mitra_id, deactivate=True))


def presence_reactivate(*, mitra_id: uuid.UUID) -> None:
    """mitras.lifecycle effect of a reactivation: after commit the mirror lets the mitra back."""
    _mirror("reactivate write", mitra_id, lambda: store.reactivate_write(mitra_id=mitra_id))


# --- heartbeat ---------------------------------------------------------------------------------


def availability_heartbeat(*, mitra_id: uuid.UUID) -> None:
    """A mitra's liveness ping (HTTP or WebSocket `heartbeat` frame).

    With Valkey up: one script (deactivated guard + write), zero SQL. Otherwise the guard reads
    Postgres (a deactivated mitra is never accepted) and the ping goes straight into
    `last_heartbeat_at`, so the mitra does not drop offline during the outage.
    """
    metrics.HEARTBEATS.inc()
    for _attempt in range(2):
        if store.reconnect_pending() is not None and not availability_heal():
            break
        try:
            result = store.heartbeat_write(mitra_id=mitra_id, now=time.time())
        except store.StoreNotSeeded:
            if availability_heal():
                continue
            break
        except store.StoreUnavailable:
            logger.warning("availability: Valkey unavailable, heartbeat written to Postgres")
            break
        if result == store.DEACTIVATED_RESULT:
            raise AccountInactive()
        return
    _heartbeat_orm(mitra_id=mitra_id)


def _heartbeat_orm(*, mitra_id: uuid.UUID) -> None:
    if mitra_is_deactivated(mitra_id=mitra_id):
        raise AccountInactive()
    # Only an online mitra's ping matters; one UPDATE, no lock needed (last writer wins, and a
    # later ping is always newer).
    MitraOnlineStatus.objects.filter(mitra_id=mitra_id, is_online=True).update(
        last_heartbeat_at=timezone.now()
    )


# --- seeding -----------------------------------------------------------------------------------


def availability_reseed(*, reason: str, progress: Callable[[str], None] | None = None) -> store.RebuildResult:
    """Rebuild the whole mirror from Postgres (atomic swap) and log one `seed:` line.

    Raises StoreUnavailable when Valkey is down. The mitras written while the rebuild runs, the
    ones this process skipped while it did not trust the mirror, and the rows changed since it
    started are re-derived from Postgres right after the swap, so no change is lost to the swap
    (docs/availability.md "Rebuild and concurrent writes").
    """
    say = progress or (lambda _msg: None)
    started = timezone.now()
    cfg = config_get()
    store.rebuild_begin()
    say("reading Postgres")
    # The current mirror's pings and online set are read on a helper thread meanwhile: both reads
    # mostly wait on a server (Postgres, Valkey), so they overlap (docs/performance.md).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reseed-prefetch") as pool:
        prefetch = pool.submit(store.rebuild_prefetch)
        source = selectors.seed_source()
        prefetched = prefetch.result()
    floor = time.time() - cfg.mitra_stale_after_seconds + _cadence()
    # The most Postgres' last_heartbeat_at can lag a live mitra's last ping (heartbeat mirror), with
    # one interval to spare for a late mirror run.
    horizon = time.time() - (
        (HEARTBEAT_MIRROR_SHARES + 1) * int(settings.HEARTBEAT_MIRROR_INTERVAL_SECONDS) + _cadence()
    )
    result = store.rebuild(
        online=source.online,
        deactivated=source.deactivated,
        capacities=source.capacities,
        max_per_mitra=cfg.max_customers_per_mitra,
        now=started.timestamp(),
        missing_heartbeat_floor=floor,
        missing_heartbeat_horizon=horizon,
        progress=say,
        prefetched=prefetched,
    )
    # Revocation markers live in the same Valkey: whatever wiped or missed the mirror missed them.
    # Before the failure is cleared: if this raises, the process keeps distrusting the mirror and
    # the next heal publishes them again.
    revoked_logins_publish()
    skipped = store.clear_reconnect(healed_at=started.timestamp())
    replayed = _replay(result.touched | skipped | _changed_since(started))
    logger.info(
        "seed: %d online, %d deactivated, %d with active sessions",
        result.online,
        result.deactivated,
        len(source.capacities),
    )
    if result.added or result.removed or replayed:
        logger.warning(
            "availability: %s healed drift (%d missing online, %d bogus online, %d replayed)",
            reason,
            result.added,
            result.removed,
            replayed,
        )
    return result


def _cadence() -> int:
    return int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS)


def _changed_since(started: dt.datetime) -> set[str]:
    """Mitras whose status, account or sessions changed in Postgres since the rebuild started."""
    ids = set(MitraOnlineStatus.objects.filter(updated_at__gte=started).values_list("mitra_id", flat=True))
    ids.update(Mitra.objects.filter(updated_at__gte=started).values_list("id", flat=True))
    ids.update(load_source().changed_since(since=started))
    return {str(mitra_id) for mitra_id in ids}


def _replay(mitra_ids: AbstractSet[str]) -> int:
    """Re-derive each mitra's place in the mirror from Postgres (read now, after the writes that
    touched it committed). If Valkey fails midway, the rest wait for the next heal. Returns how many."""
    pending = sorted(mitra_ids)
    for done, mitra_id in enumerate(pending):
        try:
            _replay_one(mitra_id)
        except store.StoreUnavailable:
            store.remember_skipped(pending[done:])
            raise
    return len(pending)


def _replay_one(mitra_id: str) -> None:
    status = (
        MitraOnlineStatus.objects.filter(mitra_id=mitra_id).values("is_online", "last_heartbeat_at").first()
    )
    if mitra_is_deactivated(mitra_id=uuid.UUID(mitra_id)):
        store.offline_write(mitra_id=mitra_id, deactivate=True)
        return
    store.reactivate_write(mitra_id=mitra_id)
    load = selectors.mitra_effective_load_orm(mitra_id=uuid.UUID(mitra_id))
    if status is not None and status["is_online"]:
        ping = (status["last_heartbeat_at"] or timezone.now()).timestamp()
        # A newer ping already in the mirror wins (Postgres' copy lags it by a mirror cycle).
        store.online_write(mitra_id=mitra_id, now=ping, capacity=load, keep_newer=True)
    else:
        store.offline_write(mitra_id=mitra_id)
        store.capacity_write(mitra_id=mitra_id, capacity=load)


def availability_heal() -> bool:
    """Reseed if the mirror cannot be trusted and nobody else is on it. True = mirror trusted now.

    Called by readers and the heartbeat when Valkey answers again after an outage or after a
    restart wiped it (docs/architecture.md "Failure semantics": rebuild on every reconnect, before trusting it).
    """
    if connection.in_atomic_block:
        # A rebuild inside a caller's transaction would read uncommitted state; let the caller
        # use Postgres this time and heal on the next call.
        return False
    since = store.seconds_since_failure()
    if since is not None and since < HEAL_BACKOFF_SECONDS:
        return False  # Valkey was unreachable a moment ago: answer from Postgres without waiting
    try:
        pending = store.reconnect_pending()
        seeded_at = store.is_seeded()
        if seeded_at is not None and (pending is None or seeded_at >= pending) and store_max_ok():
            # Someone rebuilt the mirror after our last failure: it holds what committed before
            # that rebuild read Postgres; the writes this process skipped since are re-derived.
            _replay(store.clear_reconnect(healed_at=seeded_at))
            return True
        token = store.reseed_lock_acquire(ttl_seconds=RESEED_LOCK_SECONDS)
        if token is None:
            return False
        try:
            availability_reseed(reason="reconnect")
        finally:
            store.reseed_lock_release(token)
        return True
    except store.StoreUnavailable:
        return False


def store_max_ok() -> bool:
    """The mirror's ready set was built with the current max_customers_per_mitra."""
    try:
        store.counts(cutoff=0, max_per_mitra=config_get().max_customers_per_mitra)
        return True
    except store.StoreNotSeeded:
        return False


# --- sweeps ------------------------------------------------------------------------------------


def availability_auto_offline_sweep(*, batch: int = store.SWEEP_BATCH) -> int:
    """Set offline every online mitra whose last ping is older than mitra_stale_after_seconds.

    Works only from Valkey's sorted set (O(stale)). On any Valkey error before anything was popped
    it does nothing at all: Postgres heartbeats lag by a mirror cycle, so a Postgres scan during a
    hiccup would take healthy mitras offline en masse.

    Two steps: pop every stale id from Valkey (scripts of `batch` ids, each holding Valkey for
    O(batch)), then one Postgres transaction for all of them (two set-based statements). The
    mitras it really set offline are handed to the `mitras_lost` listeners after that commit: the
    one point where "the sweep took these mitras offline" is known.
    """
    if store.reconnect_pending() is not None and not availability_heal():
        logger.warning("availability: auto-offline sweep skipped (Valkey not trusted yet)")
        return 0
    cutoff = time.time() - config_get().mitra_stale_after_seconds
    popped: list[str] = []
    while True:
        try:
            ids = store.pop_stale_ids(cutoff=cutoff, batch=batch)
        except store.StoreNotSeeded:
            availability_heal()
            logger.warning("availability: auto-offline sweep stopped (mirror was rebuilt)")
            break
        except store.StoreUnavailable:
            logger.warning("availability: auto-offline sweep stopped (Valkey unavailable)")
            break
        popped.extend(ids)
        if len(ids) < batch:
            break
    if not popped:
        return 0
    # Whatever was popped is gone from Valkey: Postgres follows even if a later pop failed.
    lost = _offline_in_postgres_ids(popped, cutoff=cutoff)
    mitras_lost(mitra_ids=lost)
    return len(lost)


@retry_on_conflict()
def _offline_in_postgres_ids(mitra_ids: list[str], *, cutoff: float) -> list[str]:
    """Offline + log rows for exactly the ids the sweep removed: one statement (an UPDATE and the
    log INSERT fed by its RETURNING), whatever the count. Returns the mitras set offline, as text.

    A row whose heartbeat in Postgres is newer than the cutoff is left online: the mitra went
    online again (which writes a fresh heartbeat) while the sweep ran, and its online write
    re-adds it to the mirror, so both sides stay online instead of Postgres offline / Valkey online.
    The ids travel as one comma-joined text parameter (split by Postgres) and come back as text:
    adapting or parsing thousands of UUIDs in Python costs more than the statement.

    Locks: only the status rows, which the UPDATE takes itself (docs/security.md "Lock order": the
    sweep never needs a `mitras` row, the log has no database key to it, and a per-mitra writer
    that holds the mitra row waits here for the status row without holding anything the sweep
    wants). A lock conflict with another multi-row writer reruns the statement (retry_on_conflict):
    the ids are already gone from Valkey, so Postgres must follow.
    """
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "WITH went AS ("
            "  UPDATE mitra_online_status SET is_online = false, last_offline_at = %s, updated_at = %s"
            "  WHERE mitra_id = ANY(string_to_array(%s, ',')::uuid[]) AND is_online"
            "  AND (last_heartbeat_at IS NULL OR last_heartbeat_at < to_timestamp(%s))"
            "  RETURNING mitra_id"
            "), logged AS ("
            "  INSERT INTO mitra_online_logs (mitra_id, event, at, reason) "
            "  SELECT mitra_id, %s, %s, %s FROM went"
            ") SELECT mitra_id::text FROM went",
            [now, now, ",".join(mitra_ids), cutoff, OnlineEvent.OFFLINE.value, now, OnlineReason.STALE.value],
        )
        return [row[0] for row in cursor.fetchall()]


# The mirror writes each online mitra's row every HEARTBEAT_MIRROR_SHARES-th cycle (its share is fixed
# by the last hex digit of its id), so a cycle at 100k online writes 100k / SHARES rows. Postgres'
# last_heartbeat_at then lags Valkey by up to SHARES mirror intervals plus one cadence (2 × 60 s +
# 30 s with the defaults) instead of one interval: every staleness decision while Valkey is up is
# made from Valkey (sweep, find-available, beacon, dashboard); Postgres' copy is read only by the
# Valkey-down fallbacks (which get fresh pings written straight to Postgres from the first ping of an
# outage) and by a rebuild (which keeps the newer of both and floors a wiped mirror's times).
HEARTBEAT_MIRROR_SHARES = 2
_HEX = "0123456789abcdef"


def _mirror_share(cycle: int) -> frozenset[str]:
    """The last hex digits of the ids written in this cycle."""
    return frozenset(
        c for i, c in enumerate(_HEX) if i % HEARTBEAT_MIRROR_SHARES == cycle % HEARTBEAT_MIRROR_SHARES
    )


def availability_heartbeat_mirror(*, full: bool = False) -> int:
    """Copy online mitras' last pings into last_heartbeat_at: one UPDATE from UNNEST.

    Each run writes this cycle's share of the mitras (HEARTBEAT_MIRROR_SHARES; `full` writes all).
    The WHERE keeps it idempotent across instances and never moves a time backwards, so two
    workers running it at once, or a late run, do no harm. Returns the rows written.
    """
    try:
        ids, stamps = store.heartbeat_times()
    except store.StoreUnavailable:
        logger.warning("availability: heartbeat mirror skipped (Valkey unavailable)")
        return 0
    if not full and HEARTBEAT_MIRROR_SHARES > 1:
        cycle = int(time.time() // max(1, int(settings.HEARTBEAT_MIRROR_INTERVAL_SECONDS)))
        share = frozenset(ord(c) for c in _mirror_share(cycle))  # an id's last byte
        # One mask, two C-speed passes (half the time of building and splitting pairs at 100k).
        mine = [m[-1] in share for m in ids]
        ids, stamps = list(compress(ids, mine)), list(compress(stamps, mine))
    if not ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        # The join hashes the status table (100k rows: ~7 MB); the default 4 MB work_mem spilled it
        # to disk in batches (~15 ms more at 100k).
        cursor.execute("SET LOCAL work_mem = '32MB'")
        cursor.execute(
            "UPDATE mitra_online_status AS s SET last_heartbeat_at = v.at "
            "FROM (SELECT u.mitra_id, to_timestamp(u.epoch) AS at FROM UNNEST("
            "  string_to_array(%s, ',')::uuid[], string_to_array(%s, ',')::float8[]"
            ") AS u(mitra_id, epoch)) AS v "
            "WHERE s.mitra_id = v.mitra_id AND (s.last_heartbeat_at IS NULL OR s.last_heartbeat_at < v.at)",
            [b",".join(ids).decode(), b",".join(stamps).decode()],
        )
        return int(cursor.rowcount)


def availability_reconcile() -> store.RebuildResult | None:
    """Heal drift both ways by a full rebuild (lock-guarded so instances do not pile up)."""
    try:
        token = store.reseed_lock_acquire(ttl_seconds=RESEED_LOCK_SECONDS)
    except store.StoreUnavailable:
        logger.warning("availability: reconcile skipped (Valkey unavailable)")
        return None
    if token is None:
        logger.info("availability: reconcile skipped (another rebuild is running)")
        return None
    try:
        return availability_reseed(reason="reconcile")
    except store.StoreUnavailable:
        logger.warning("availability: reconcile aborted (Valkey unavailable)")
        return None
    finally:
        store.reseed_lock_release(token)


def availability_seed_at_startup(*, source: str) -> bool:
    """Rebuild the mirror when a process starts (the web in its ASGI lifespan, availability.hotpath;
    a Celery worker when it is ready, availability.tasks), then load this process's copy of the
    ready set, so its first find-available is not the one that reads and decodes the whole set.
    Best effort: readers heal a missing mirror anyway. True when this process did the rebuild."""
    seeded = _seed_at_startup(source=source)
    try:
        loaded = selectors.ready_copy_warm()
        logger.info("availability: %s start-up loaded %d ready mitras", source, loaded)
    except Exception:  # start-up must go on; the first reader loads the copy
        logger.exception("availability: %s start-up could not load the ready set", source)
    return seeded


def _seed_at_startup(*, source: str) -> bool:
    try:
        token = store.reseed_lock_acquire(ttl_seconds=RESEED_LOCK_SECONDS)
        if token is None:
            logger.info("availability: %s startup seed skipped (another instance is seeding)", source)
            return False
        try:
            availability_reseed(reason=f"{source} startup")
        finally:
            store.reseed_lock_release(token)
        return True
    except store.StoreUnavailable:
        logger.warning("availability: %s startup seed skipped (Valkey unavailable)", source)
        return False
    except Exception:  # startup must go on; readers fall back to Postgres
        logger.exception("availability: %s startup seed failed", source)
        return False
