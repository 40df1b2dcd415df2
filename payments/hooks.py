"""The one hook from payments to the app that turns a paid request into a chat.

payments sits below sessions_app and imports nothing from it. sessions_app registers its handler
at start-up (SessionsAppConfig.ready: `sessions_app.services.pairing.pairing_open_for_payment`), and
`payments.services.payment_request_confirm` calls it, inside the confirming transaction, for a
request that is (or already was) confirmed. The handler must be idempotent: a retried confirmation
calls it again. With no handler registered, confirmation only records the payment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

ConfirmedHandler = Callable[..., object]  # called as handler(payment_request_id=...)

_handler: ConfirmedHandler | None = None


def payment_confirmed_handler_register(handler: ConfirmedHandler) -> None:
    """Install the one handler (the last registration wins; start-up calls it once)."""
    global _handler
    _handler = handler


def payment_confirmed_notify(*, payment_request_id: uuid.UUID) -> None:
    if _handler is not None:
        _handler(payment_request_id=payment_request_id)
