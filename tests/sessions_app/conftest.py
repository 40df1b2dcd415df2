"""Fixtures for the sessions_app tests (the shared helpers live in *_support.py)."""

import pytest

from tests.sessions_app.pairing_support import use_blast_config
from tests.sessions_app.ws_support import sockets

__all__ = ["blast_config", "sockets"]

DB_FIXTURES = {"db", "transactional_db"}


@pytest.fixture
def blast_config(request: pytest.FixtureRequest) -> None:
    """Issue 4's blast-to-all (pairing_support.BLAST_CONFIG), for tests that need a database."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        DB_FIXTURES & set(request.fixturenames)
    )
    if not uses_db:
        return
    request.getfixturevalue("_reference_data")
    use_blast_config()
