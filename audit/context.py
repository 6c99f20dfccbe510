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


def client_ip(remote_addr: str | None, forwarded_for: str | None) -> str | None:
    """The client's address. Behind the proxies named in TRUSTED_PROXIES (addresses or
    networks), the right-most X-Forwarded-For address that is not one of them; anyone
    else's X-Forwarded-For is ignored (it is whatever the client chose to send)."""
    import ipaddress

    from django.conf import settings

    def parse(value):
        try:
            return ipaddress.ip_address((value or "").strip())
        except ValueError:
            return None

    networks = []
    for entry in getattr(settings, "TRUSTED_PROXIES", []):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue

    def trusted(address) -> bool:
        return address is not None and any(address in network for network in networks)

    remote = parse(remote_addr)
    if remote is None:
        return None
    if not trusted(remote) or not forwarded_for:
        return str(remote)
    for hop in reversed(forwarded_for.split(",")):
        address = parse(hop)
        if address is None:
            return str(remote)  # a malformed chain: keep what we know
        if not trusted(address):
            return str(address)
    return str(remote)


def request_client_ip(request) -> str | None:
    """The client address of an HTTP request, by the same rule as the access log."""
    return client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
