"""Project-wide response hardening."""

from django.conf import settings


class NoStoreMiddleware:
    """Case data must never sit in a browser or proxy cache.

    Every dynamic response is marked `Cache-Control: no-store`; only static assets
    (served by WhiteNoise before this runs) may be cached.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(settings.STATIC_URL):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response
