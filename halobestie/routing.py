"""WebSocket routes."""

from django.urls import path

from sessions_app.consumers import GatewayConsumer

websocket_urlpatterns = [path("api/shared/ws", GatewayConsumer.as_asgi())]
