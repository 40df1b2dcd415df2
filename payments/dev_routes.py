"""Dev-only routes of payments (see halobestie.dev_routes)."""

from collections.abc import Callable

DEV_ROUTES: list[tuple[str, Callable[..., object]]] = []
