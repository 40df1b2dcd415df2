"""Fixtures for the sessions_app tests (the shared helpers live in *_support.py)."""

from tests.sessions_app.ws_support import sockets

__all__ = ["sockets"]
