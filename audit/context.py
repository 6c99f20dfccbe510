"""Who is asking, from where: the request context every audit entry carries.

Set once per HTTP request by `RequestContextMiddleware` (and later per socket by
the live consumers); read by `audit.actions.record`.
"""

import contextvars
import re
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_ip: str | None = None
    user_agent: str = ""


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "audit_request_context", default=RequestContext()  # noqa: B039 (frozen dataclass)
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current() -> RequestContext:
    return _current.get()


def activate(ctx: RequestContext) -> contextvars.Token:
    return _current.set(ctx)


def deactivate(token: contextvars.Token) -> None:
    _current.reset(token)


def request_id_from(header_value: str | None) -> str:
    """Keep a well-formed incoming request id (from the load balancer); else make one."""
    if header_value and _REQUEST_ID.match(header_value):
        return header_value
    return uuid.uuid4().hex
