"""Fixtures for the care tests: the real-socket fixture of the sessions_app tests and the child
processes (Celery worker) of the fault suite."""

from tests.faults.conftest import stack
from tests.sessions_app.ws_support import sockets

__all__ = ["sockets", "stack"]
