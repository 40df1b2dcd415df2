"""Routes: pairing."""

from ninja import Router

ROUTERS: list[tuple[str, Router]] = []
