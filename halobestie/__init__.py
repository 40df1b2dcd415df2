"""HaloBestie backend project package."""

from halobestie.celery import app as celery_app

__all__ = ["celery_app"]
