"""REST routes of this app (registered by halobestie.api)."""

from ninja import Router

ROUTERS: list[tuple[str, Router]] = []
