"""Celery tasks: pairing."""

__all__: list[str] = []
