"""The Xendit stand-in (real HTTP on 127.0.0.1) with the provider switched on in settings.

Payments tests exercise the money paths of issue 4's pairing (nobody available → failed pairing →
refund case), so every database test here runs with the blast-to-all configuration (queue off, one
wave to everyone): the same `blast_config` fixture the sessions_app tests use. The queue's own money
path (queue timeout → failed pairing) is tested with the matching tests.
"""

from __future__ import annotations

import pytest

from tests.payments.xendit_standin import xendit
from tests.sessions_app.conftest import blast_config

__all__ = ["blast_config", "xendit"]


@pytest.fixture(autouse=True)
def _payments_use_blast_config(blast_config: None) -> None:
    return None
