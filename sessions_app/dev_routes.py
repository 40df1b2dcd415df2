"""Dev-only routes (see halobestie.dev_routes)."""

from collections.abc import Callable

DEV_ROUTES: list[tuple[str, Callable[..., object]]] = []
