"""On Redis, what crosses the channel layer is encrypted: note entries for their
permitted audiences never sit in Redis as plain text."""

import pytest
from channels.layers import get_channel_layer


@pytest.mark.requires_redis
def test_messages_on_the_redis_layer_are_encrypted():
    layer = get_channel_layer()
    message = {"type": "case.event", "html": "Kerry has a refuge place (PLAINTEXT-4411)"}
    wire = layer.serialize(message)
    assert b"PLAINTEXT-4411" not in wire
    assert layer.deserialize(wire) == message
