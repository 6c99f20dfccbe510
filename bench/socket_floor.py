"""Two bare Channels applications for the floors of bench/live_fanout.py.

Served by their own Daphne process (`daphne bench.socket_floor:application`) on the same
Redis channel layer as the product. Neither has a database, sign-in, permission or
audit.

- `/echo/<room>/`: the group echo, written as Channels' own tutorial writes a chat
  room. Each connection joins the room's group; a message a client sends is sent to
  the group and every member writes it to its socket, the sender included. The
  benchmark times one client's message until each of the N clients in the room has it
  back: what Channels itself costs to fan a message out to a room of N browsers. The
  group's name begins with `BENCH_FLOOR_GROUP` (which the benchmark's clean-up
  removes).
- `/floor/`: the cheapest fan-out this stack allows, for comparison. Each connection is
  added to a set in this process, and one task per process listens on the channel layer
  (one group member, `BENCH_FLOOR_GROUP`, as the product's room relay is) and writes each
  message's text to every open connection.
"""

import asyncio
import gc
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


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.group = f"{GROUP}.{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data='{"type": "ready"}')

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.group, {"type": "room.echo", "text": text_data})

    async def room_echo(self, event):
        await self.send(text_data=event["text"])


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
    "websocket": URLRouter([
        path("echo/<slug:room>/", EchoConsumer.as_asgi()),
        path("floor/", FloorConsumer.as_asgi()),
    ]),
})

# As workspace/asgi.py does for the product: the start-up heap is kept out of full
# collections, so the floors are measured as cheap as the product's own process is.
gc.collect()
gc.freeze()
