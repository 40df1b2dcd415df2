"""Celery tasks: clock."""

__all__: list[str] = []
