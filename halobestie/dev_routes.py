"""Dev-only routes under /internal/_test/ (api.md): mounted only with DEBUG or HALOBESTIE_DEV_ROUTES.

Each app contributes its handlers through DEV_ROUTES = [(path, view), ...] in its dev_routes module;
when the flag is off, the paths do not exist (404).
"""

from __future__ import annotations

import importlib

from django.conf import settings
from django.urls import URLPattern, path

DEV_ROUTE_MODULES = ("sessions_app.dev_routes",)


def _patterns() -> list[URLPattern]:
    if not (settings.DEBUG or settings.HALOBESTIE_DEV_ROUTES):
        return []
    patterns = []
    for module_name in DEV_ROUTE_MODULES:
        module = importlib.import_module(module_name)
        for route, view in module.DEV_ROUTES:
            patterns.append(path(f"internal/_test/{route}", view))
    return patterns


urlpatterns = _patterns()
