"""A bare WebSocket fan-out, for the "socket" floor of bench/live_fanout.py.

Served by its own Daphne process (`daphne bench.socket_floor:application`) on the same
Redis channel layer as the product. It has no database, no sign-in, no permission and
no audit: each connection to `/floor/` is added to a set in this process, and one task
per process listens on the channel layer (one group member, as the product's room relay
is) and writes each message's text to every open connection. The benchmark times a
`group_send` to that group until each of N WebSocket clients has parsed the frame: the
cheapest way this stack gets one message to N browsers, with nothing of the product in
it. The group is `BENCH_FLOOR_GROUP` (set by the benchmark to a name its clean-up
removes).
"""

import asyncio
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workspace.settings.test")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = os.environ.get("BENCH_FLOOR_GROUP", "bench.echo.floor")

_open: set["FloorConsumer"] = set()
_listening: asyncio.Future | None = None


async def _listen(ready: asyncio.Future) -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    ready.set_result(True)
    while True:
        message = await layer.receive(channel)
        text = message["text"]
        for consumer in list(_open):
            await consumer.send(text_data=text)


class FloorConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        global _listening
        if _listening is None:
            _listening = asyncio.get_running_loop().create_future()
            asyncio.ensure_future(_listen(_listening))
        await self.accept()
        await _listening
        _open.add(self)
        await self.send(text_data='{"type": "ready"}')

    async def disconnect(self, code):
        _open.discard(self)


application = ProtocolTypeRouter({
    "websocket": URLRouter([path("floor/", FloorConsumer.as_asgi())]),
})
