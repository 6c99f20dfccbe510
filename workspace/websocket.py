"""The origin check in front of every WebSocket, with an audit entry for refusals.

Channels' AllowedHostsOriginValidator with one change: a connection from a foreign
origin, or with no Origin at all, is recorded in the audit trail and closed with the
same code as every other refusal (casenotes.consumers.CLOSE_REFUSED).
"""

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings

from audit import context
from audit.actions import Actor, record
from audit.models import AuditAction, Outcome


class AuditedAllowedHostsOriginValidator(OriginValidator):
    def __init__(self, application):
        allowed_hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed_hosts:
            allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed_hosts)

    async def __call__(self, scope, receive, send):
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin1")
        from urllib.parse import urlparse

        try:
            parsed = urlparse(origin) if origin is not None else None
            valid = self.valid_origin(parsed)
        except ValueError:
            valid = False
        if valid:
            return await self.application(scope, receive, send)
        await database_sync_to_async(_record_refusal)(scope, origin)
        from casenotes.consumers import RefuseConnection

        return await RefuseConnection.as_asgi()(scope, receive, send)


def _record_refusal(scope, origin: str | None) -> None:
    from casenotes.consumers import request_context_for

    token = context.activate(request_context_for(scope))
    try:
        record(actor=Actor(user_id=None, label="anonymous"), action=AuditAction.ACCESS_DENIED,
               outcome=Outcome.DENIED, object_type="socket", object_id=scope.get("path", "")[:64],
               reason=f"live connection from origin {origin!r} refused")
    finally:
        context.deactivate(token)
