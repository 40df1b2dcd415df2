"""Celery tasks of sessions_app (autodiscovered through this package)."""

from sessions_app.tasks.clock import *  # noqa: F403
from sessions_app.tasks.events import *  # noqa: F403
from sessions_app.tasks.pairing import *  # noqa: F403
from sessions_app.tasks.reroute import *  # noqa: F403
