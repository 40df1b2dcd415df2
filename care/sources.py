"""What care registers with sessions_app (sessions_app/hooks.py): the pairs that must never be
matched (blocks) and the sessions the clock must hold open (open crisis flags)."""

from __future__ import annotations

import datetime as dt
import uuid

from care.selectors import block_list_mitra_ids, crisis_flag_is_open

# While a crisis flag is open the clock moves a due expiry (or goodbye deadline) this far ahead and
# asks again then; once ops acknowledge, the session ends at the next such deadline.
CRISIS_HOLD_STEP = dt.timedelta(minutes=5)


class BlockExclusionSource:
    def excluded_mitras(self, *, customer_id: uuid.UUID) -> set[uuid.UUID]:
        return block_list_mitra_ids(customer_id=customer_id)


class CrisisHoldSource:
    def hold_until(self, *, session_id: uuid.UUID, now: dt.datetime) -> dt.datetime | None:
        return now + CRISIS_HOLD_STEP if crisis_flag_is_open(session_id=session_id) else None
