"""Helpers for tests of the live case room (ws/cases/<id>/): a signed-in browser tab
talking to `workspace.asgi.application`, so the origin check, the session and auth
middleware and the router are all in the path.

Fixtures: `rooms` (open tabs, all closed at the end) and `live_layer` (a fresh channel
layer). Import `rooms_fixture` and `live_layer_fixture` to use them.

Tests using these must be transactional (`@pytest.mark.django_db(transaction=True)`):
the consumer reads through `database_sync_to_async` threads, which cannot see rows a
plain test transaction has not committed.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from tests.factories import PASSWORD
from workspace.asgi import application

ORIGIN = "http://localhost"

#: What a server refusal looks like on the wire: accepted, then closed with the one code.
CLOSE_REFUSED = 4403


async def sign_in(user) -> Client:
    """A browser session for `user`, signed in through the login machinery."""
    client = Client()
    assert await sync_to_async(client.login)(username=user.get_username(), password=PASSWORD)
    return client


def session_cookie(client: Client) -> tuple[bytes, bytes]:
    name = settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


class Tab:
    """One open socket, as a page would hold it. Presence frames (which arrive whenever
    anyone joins or leaves) are kept aside in `presence`; every other frame is returned
    in order by `frame()`."""

    def __init__(self, communicator: WebsocketCommunicator, user=None):
        self.communicator = communicator
        self.user = user
        self.presence: list[dict] | None = None
        self.presence_seen: list[list[dict]] = []  # every presence list, in order
        self.checkpoints: list[int] = []  # where the page would resume, as the server said
        self.disconnected = False
        self.closed_by_server = False

    def __repr__(self) -> str:
        return f"<Tab of {self.user}>"

    def _take_presence(self, message: dict) -> None:
        self.presence = message["people"]
        self.presence_seen.append(message["people"])

    # --- sending -------------------------------------------------------------------
    async def send(self, message) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})

    # --- receiving -----------------------------------------------------------------
    async def output(self, timeout: float = 5) -> dict:
        output = await self.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            self.closed_by_server = True
        return output

    async def frame(self, timeout: float = 5) -> dict:
        """The next frame that is not a presence update or a checkpoint (both are kept)."""
        while True:
            output = await self.output(timeout)
            assert output["type"] == "websocket.send", f"expected a frame, got {output}"
            assert "text" in output, f"expected a text frame, got {output}"
            message = json.loads(output["text"])
            if message.get("type") == "presence":
                self._take_presence(message)
                continue
            if message.get("type") == "checkpoint":
                self.checkpoints.append(message["seq"])
                continue
            return message

    async def expect(self, kind: str, timeout: float = 5) -> dict:
        message = await self.frame(timeout)
        assert message["type"] == kind, f"expected {kind!r}, got {message}"
        return message

    async def frames_until(self, kind: str, timeout: float = 5) -> list[dict]:
        """Every frame up to and including the first of type `kind`."""
        seen = []
        while True:
            message = await self.frame(timeout)
            seen.append(message)
            if message["type"] == kind:
                return seen

    async def presence_update(self, timeout: float = 5) -> list[dict]:
        """The next presence list (other frames before it fail the test)."""
        output = await self.output(timeout)
        assert output["type"] == "websocket.send", output
        message = json.loads(output["text"])
        assert message["type"] == "presence", f"expected presence, got {message}"
        self._take_presence(message)
        return self.presence

    async def settle_presence(self, timeout: float = 0.3) -> list[dict] | None:
        """Take every presence update already on its way; fail on any other frame."""
        await self.assert_nothing(timeout)
        return self.presence

    async def assert_nothing(self, timeout: float = 0.3) -> None:
        """Nothing but presence updates (and checkpoints) arrives within `timeout`."""
        while not await self.communicator.receive_nothing(timeout=timeout, interval=0.01):
            output = await self.output(1)
            if output["type"] == "websocket.send" and "text" in output:
                message = json.loads(output["text"])
                if message.get("type") == "presence":
                    self._take_presence(message)
                    continue
                if message.get("type") == "checkpoint":
                    self.checkpoints.append(message["seq"])
                    continue
            raise AssertionError(f"expected nothing, received {output}")

    async def closed(self, timeout: float = 5) -> int:
        """Wait for the server to close this socket (presence frames may come first;
        any other frame fails the test). Returns the close code."""
        while True:
            output = await self.output(timeout)
            if output["type"] == "websocket.close":
                return output.get("code", 1000)
            message = json.loads(output.get("text") or "{}")
            assert message.get("type") == "presence", f"expected the close, got {output}"
            self._take_presence(message)

    async def refusal(self) -> list[dict]:
        """Every output after the accept, up to the close."""
        outputs = []
        while True:
            output = await self.output()
            outputs.append(output)
            if output["type"] == "websocket.close":
                return outputs

    # --- the room protocol -----------------------------------------------------------
    async def resume(self, after: int = 0) -> tuple[list[dict], dict]:
        """Send resume; return (every frame before `synced`, the synced frame)."""
        await self.send({"type": "resume", "after": after})
        frames = await self.frames_until("synced")
        return frames[:-1], frames[-1]

    async def ping(self) -> None:
        """The connection is alive and answering."""
        await self.send({"type": "ping"})
        await self.expect("pong")

    async def disconnect(self) -> None:
        """Close the socket and wait for the consumer to finish (its presence removed).
        A consumer the server already closed has nothing left to do; on Redis it can
        sit in a blocking receive for seconds, so it is not waited for long."""
        if not self.disconnected:
            self.disconnected = True
            await self.communicator.disconnect(timeout=0.5 if self.closed_by_server else 5)


class Rooms:
    """Opens tabs and closes every one of them at the end of the test."""

    tab_class = Tab

    def __init__(self):
        self.tabs: list[Tab] = []
        self.clients: dict[int, Client] = {}

    async def client_for(self, user) -> Client:
        if user.pk not in self.clients:
            self.clients[user.pk] = await sign_in(user)
        return self.clients[user.pk]

    async def connect(
        self, case_id: int, *, user=None, client: Client | None = None,
        origin: str | None = ORIGIN, path: str | None = None,
    ) -> Tab:
        """Open a socket (not yet resumed). `user` signs in (once per user) unless a
        `client` is given; with neither the socket is anonymous."""
        if client is None and user is not None:
            client = await self.client_for(user)
        headers = [(b"user-agent", b"pytest-live-room")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if client is not None and settings.SESSION_COOKIE_NAME in client.cookies:
            headers.append(session_cookie(client))
        communicator = WebsocketCommunicator(
            application, path or f"/ws/cases/{case_id}/", headers=headers)
        tab = self.tab_class(communicator, user)
        self.tabs.append(tab)
        connected, _ = await communicator.connect(timeout=5)
        assert connected, "the socket is always accepted first (then closed if refused)"
        return tab

    async def open(self, case_id: int, user, *, after: int | None = 0, client=None) -> Tab:
        """A joined, resumed tab with its first presence list taken."""
        tab = await self.connect(case_id, user=user, client=client)
        await tab.presence_update()
        if after is not None:
            frames, _ = await tab.resume(after)
            tab.replayed = frames
        return tab

    async def close_all(self) -> None:
        errors = []
        for tab in self.tabs:
            try:
                await tab.disconnect()
            except Exception as error:  # keep closing the others
                errors.append(error)
        # The consumers' database threads keep connections open; close them so the
        # next test's flush (and the test database's removal) is not blocked.
        await sync_to_async(connections.close_all)()
        await database_sync_to_async(lambda: None)()
        if errors:
            raise errors[0]


async def forget_groups(layer) -> None:
    """What a Redis restart does to a connection that outlives it: every group
    membership is gone (on the in-memory layer or on Redis)."""
    if hasattr(layer, "groups"):
        layer.groups.clear()
    else:
        await layer.flush()


def isolated_channel_layers() -> dict:
    """CHANNEL_LAYERS for one test: on Redis, a prefix of this process's own, so suites
    running side by side on one Redis never hear each other's groups."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    default = layers["default"]
    if "redis" in default["BACKEND"].lower():
        default.setdefault("CONFIG", {})["prefix"] = f"asgi-test-{os.getpid()}"
    return layers


@pytest.fixture(name="live_layer")
def live_layer_fixture(settings):
    """A fresh channel layer for the test (setting CHANNEL_LAYERS drops the cached one)."""
    settings.CHANNEL_LAYERS = isolated_channel_layers()
    return settings.CHANNEL_LAYERS


@pytest.fixture(name="rooms")
async def rooms_fixture(world, live_layer):
    """Tabs on `world`'s cases, every one closed before the database is flushed."""
    opened = Rooms()
    yield opened
    await opened.close_all()
