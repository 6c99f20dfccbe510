"""Production profile: the base settings plus HTTPS-only transport and cookies.

Refuses to start without a SECRET_KEY, with DEBUG on, or with a wildcard host.
TLS is terminated at the load balancer, which must set X-Forwarded-Proto
(see docs/operations.md).
"""

from django.core.exceptions import ImproperlyConfigured

from workspace.settings.base import *  # noqa: F403
from workspace.settings.base import ALLOWED_HOSTS, DEBUG, env

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production.")
if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the service's hosts; '*' is refused.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# The load balancer's health check may come over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=63_072_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
