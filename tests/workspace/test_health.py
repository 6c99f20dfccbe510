"""/healthz answers for the database and Redis, needs no sign-in, and says what is down."""

import socket

import pytest
from django.test import Client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db
def test_healthz_answers_ok_without_signing_in_and_is_not_cached(settings):
    settings.REDIS_URL = ""
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not used"}
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_says_redis_is_down_with_503(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "unavailable"}


@pytest.mark.django_db
def test_healthz_says_the_database_is_down_with_503(monkeypatch, settings):
    settings.REDIS_URL = ""
    from django.db import connection

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(connection, "cursor", broken)
    response = Client().get("/healthz")
    assert response.status_code == 503 and response.json()["database"] == "unavailable"


@pytest.mark.requires_redis
def test_healthz_checks_a_real_redis_when_one_is_configured(settings):
    import os

    settings.REDIS_URL = os.environ["REDIS_URL"]
    from workspace.health import _redis

    assert _redis() == "ok"
