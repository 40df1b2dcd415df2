"""Retry a service whose transaction lost a deadlock or a serialization conflict.

Every mitra/status write takes its locks in one order (docs/security.md "Lock order"), so a
deadlock should not happen; if one still does (a path not yet in that order, Postgres' own
internal locks), the loser's transaction is rolled back whole and may simply run again. After
`attempts` tries the error propagates and `halobestie.exceptions` answers 503 with a "busy,
retry" message (never "database unavailable": the database is fine).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, connection

from halobestie.exceptions import is_lock_conflict

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def retry_on_conflict(attempts: int = 3) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a service (outside its @transaction.atomic) to run again on a lock conflict.

    Inside an outer transaction a retry is impossible (the outer one is aborted), so there the
    error propagates at once and the outermost retrying service handles it."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except OperationalError as exc:
                    if not is_lock_conflict(exc) or connection.in_atomic_block or attempt == attempts:
                        raise
                    logger.warning(
                        "%s: %s, retrying (%s/%s)",
                        fn.__name__,
                        type(exc.__cause__).__name__,
                        attempt,
                        attempts,
                    )
                    time.sleep(random.uniform(0.005, 0.03) * attempt)  # noqa: S311 - jitter, not a secret
            raise AssertionError("unreachable")

        return run

    return decorate
