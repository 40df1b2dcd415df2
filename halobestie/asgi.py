"""ASGI entry: Django for HTTP (built first), then the WebSocket router.

The availability hot path (heartbeat, beacon) and the lifespan startup seed sit in front of
both: see availability.hotpath. halobestie.bodylimit sits in front of everything.

Native mobile clients send no Origin header, so no origin validator wraps the WebSocket router;
sockets authenticate with their first frame instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "halobestie.settings.production")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from availability.hotpath import AvailabilityHotPath  # noqa: E402
from halobestie.bodylimit import BodyLimitMiddleware  # noqa: E402
from halobestie.routing import websocket_urlpatterns  # noqa: E402

# Outermost: bodies over the route's limit are refused before anything buffers them.
application = BodyLimitMiddleware(
    AvailabilityHotPath(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": URLRouter(websocket_urlpatterns),
            }
        )
    )
)
