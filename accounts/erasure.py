"""Registration point for account erasure: apps above accounts register the step that erases or
anonymises their own rows about a customer (their `AppConfig.ready`); `customer_erase`
(accounts/services/erasure.py) runs every step, then erases the accounts rows, in one transaction.
A step must be idempotent (an erase may be repeated) and must not commit on its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable

EraseStep = Callable[[uuid.UUID], None]

_steps: dict[str, EraseStep] = {}


def erase_step_register(name: str, step: EraseStep) -> None:
    """Install a step under a name (registering the same name again replaces it)."""
    _steps[name] = step


def erase_steps() -> list[tuple[str, EraseStep]]:
    return list(_steps.items())
