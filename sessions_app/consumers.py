"""WebSocket gateway at /api/shared/ws (api.md). Filled in by the gateway work."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class GatewayConsumer(AsyncJsonWebsocketConsumer):
    pass
