"""The Xendit stand-in (real HTTP on 127.0.0.1) with the provider switched on in settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.payments.xendit_standin import CALLBACK_TOKEN, SECRET_KEY, XenditStandIn


@pytest.fixture
def xendit(settings: Any) -> Iterator[XenditStandIn]:
    standin = XenditStandIn()
    settings.XENDIT_ENABLED = True
    settings.XENDIT_API_BASE = standin.url
    settings.XENDIT_SECRET_KEY = SECRET_KEY
    settings.XENDIT_CALLBACK_TOKEN = CALLBACK_TOKEN
    settings.XENDIT_TIMEOUT_SECONDS = 1.0
    yield standin
    standin.stop()
