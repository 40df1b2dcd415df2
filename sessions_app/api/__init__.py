"""REST routes of sessions_app: one module per concern, collected here for halobestie.api."""

from ninja import Router

from sessions_app.api import chat, checkout, clock, history, pairing

ROUTERS: list[tuple[str, Router]] = [
    *checkout.ROUTERS,
    *chat.ROUTERS,
    *pairing.ROUTERS,
    *clock.ROUTERS,
    *history.ROUTERS,
]
