"""`/healthz`: is this process able to serve? For load balancers and monitoring.

Checks the database (a query) and, when REDIS_URL is set, Redis (a PING). Answers
200 with each part "ok", or 503 naming what is down. It carries no case data, needs no
sign-in and writes nothing (not even the access log: it is called every few seconds).
Redis down does not stop pages and saves (the database is the record), but live
updates wait for it, so monitoring should see it.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception:
        logger.warning("health check: database unavailable", exc_info=True)
        return "unavailable"


def _redis() -> str:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "not used"
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except Exception:
        logger.warning("health check: Redis unavailable", exc_info=True)
        return "unavailable"


@never_cache
@require_GET
def healthz(request):
    parts = {"database": _database(), "redis": _redis()}
    healthy = all(state in ("ok", "not used") for state in parts.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **parts},
                        status=200 if healthy else 503)
