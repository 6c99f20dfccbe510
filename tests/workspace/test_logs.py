"""Logs are JSON lines carrying the request id, and never carry note text."""

import io
import json
import logging
import logging.config
import socket

import pytest
from django.conf import settings as django_settings
from django.test import Client


@pytest.fixture
def log_lines():
    """The root logger's records, formatted as production formats them."""
    stream = io.StringIO()
    config = django_settings.LOGGING
    handler = logging.StreamHandler(stream)
    formatter_config = dict(config["formatters"]["json"])
    factory = formatter_config.pop("()")
    from django.utils.module_loading import import_string

    handler.setFormatter(import_string(factory)(**formatter_config))
    handler.addFilter(import_string(config["filters"]["request_id"]["()"])())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db
def test_a_log_line_is_json_with_the_request_id_of_its_request(settings, log_lines):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-req-0123456789")
    assert response.status_code == 503
    lines = [line for line in log_lines() if line["logger"] == "workspace.health"]
    assert lines and lines[0]["level"] == "WARNING"
    assert lines[0]["request_id"] == response["X-Request-ID"] == "lb-req-0123456789"
    assert {"time", "message"} <= set(lines[0])


def test_a_note_saved_while_live_notices_fail_leaves_no_note_text_in_the_logs(
        world, settings, log_lines, django_capture_on_commit_callbacks):
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [f"redis://127.0.0.1:{_closed_port()}/0"]}}}
    body = "Kerry has moved to a refuge at a confidential address (LOGSECRET-5521)."
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        world.standard_note(world.social_worker, body=body)
    assert callbacks  # the live notice was attempted (and failed: nothing listens there)
    lines = log_lines()
    assert any("not sent" in line["message"] for line in lines)
    assert "LOGSECRET-5521" not in json.dumps(lines)
