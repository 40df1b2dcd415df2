"""Fixtures for the care tests: the real-socket fixture of the sessions_app tests."""

from tests.sessions_app.ws_support import sockets

__all__ = ["sockets"]
