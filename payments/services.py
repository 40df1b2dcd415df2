"""Payment writes that need no chat session: the expiry sweep of stale pending requests.

Creating and confirming a payment request open or check chat sessions, so they are checkout services
in sessions_app (sessions_app.services.checkout); payments imports nothing from sessions_app.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone

from payments.models import PaymentRequest, PaymentStatus

logger = logging.getLogger(__name__)


def payment_request_expire_stale(*, now: dt.datetime | None = None) -> int:
    """Expire pending requests past their deadline (one conditional UPDATE; a confirm that holds the
    row lock first wins, and this UPDATE then skips the row because it is no longer pending)."""
    moment = now or timezone.now()
    count = PaymentRequest.objects.filter(status=PaymentStatus.PENDING, expires_at__lte=moment).update(
        status=PaymentStatus.EXPIRED, updated_at=moment
    )
    if count:
        logger.info("payments: expired %d stale pending requests", count)
    return count
