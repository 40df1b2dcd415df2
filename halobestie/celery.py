"""The Celery app: Valkey broker, tasks autodiscovered from each app's tasks.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "halobestie.settings.production")

app = Celery("halobestie")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
