"""The Xendit stand-in (real HTTP on 127.0.0.1) with the provider switched on in settings."""

from __future__ import annotations

from tests.payments.xendit_standin import xendit

__all__ = ["xendit"]
