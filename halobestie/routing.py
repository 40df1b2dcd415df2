"""WebSocket routes: the gateway (halobestie.gateway), whose frame handlers the apps register."""

from django.urls import path

from halobestie.gateway.consumer import GatewayConsumer

websocket_urlpatterns = [path("api/shared/ws", GatewayConsumer.as_asgi())]
