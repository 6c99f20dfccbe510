"""On Redis, what crosses the channel layer is encrypted: note entries for their
permitted audiences never sit in Redis as plain text."""

import asyncio

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer


@pytest.mark.requires_redis
def test_messages_on_the_redis_layer_are_encrypted():
    layer = get_channel_layer()
    message = {"type": "case.event", "html": "Kerry has a refuge place (PLAINTEXT-4411)"}
    wire = layer.serialize(message)
    assert b"PLAINTEXT-4411" not in wire
    assert layer.deserialize(wire) == message


def _layer():
    """A channel layer of its own, built from the settings (not the shared one)."""
    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


@pytest.mark.requires_redis
def test_a_read_from_redis_outlasts_the_layers_blocking_receive():
    """channels-redis waits for a message with a blocking pop of `brpop_timeout` (5 s).
    redis-py 8 gives up on a read after 5 s by default, so an idle socket's wait timed
    out as often as not and the socket was closed as if Redis were down."""
    layer = _layer()
    timeout = layer.create_pool(0).connection_kwargs.get("socket_timeout")
    assert timeout is not None, "a Redis that stops answering must still be noticed"
    assert timeout >= layer.brpop_timeout + 5


@pytest.mark.requires_redis
async def test_an_idle_receive_waits_through_a_blocking_pop_without_dropping_its_connection(
    monkeypatch,
):
    """On the real server: a receive with nothing to receive for longer than redis-py's
    own read timeout (5 s) is still waiting on the same connection when a message comes.
    A read that timed out would drop the connection (a reply Redis sent at that moment,
    a message it had popped, would be lost with it) and retry on a new one."""
    from redis.asyncio.connection import AbstractConnection

    dropped = []
    disconnect = AbstractConnection.disconnect

    async def counted(connection, *args, **kwargs):
        dropped.append(connection)
        return await disconnect(connection, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "disconnect", counted)
    layer = _layer()
    layer.brpop_timeout = 5.5  # one blocking pop outlasting redis-py's default read timeout
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    try:
        await asyncio.sleep(6)
        assert not waiting.done(), waiting.exception() if waiting.done() else None
        await layer.send(channel, {"type": "case.event", "seq": 1})
        assert (await asyncio.wait_for(waiting, timeout=5)) == {"type": "case.event", "seq": 1}
        assert dropped == []
    finally:
        waiting.cancel()
        await layer.close_pools()
