"""ASGI entry point: HTTP through Django, WebSockets through Channels.

`get_asgi_application()` runs first so Django's app registry is ready before any
consumer or model is imported.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workspace.settings.base")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from workspace.routing import websocket_urlpatterns  # noqa: E402
from workspace.websocket import AuditedAllowedHostsOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuditedAllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Everything loaded at start-up lives as long as the process: move it out of the cyclic
# garbage collector's way, so full collections (which pause every open socket) stay short.
gc.collect()
gc.freeze()
