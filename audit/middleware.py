from audit import context


class RequestContextMiddleware:
    """Give every request an id, and make it and the client's address available to
    the audit writer. The id is returned in `X-Request-ID` for support and logs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = context.request_id_from(request.headers.get("X-Request-ID"))
        token = context.activate(
            context.RequestContext(
                request_id=request_id,
                client_ip=context.client_ip(request.META.get("REMOTE_ADDR"),
                                            request.headers.get("X-Forwarded-For")),
                user_agent=request.headers.get("User-Agent", "")[:256],
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.deactivate(token)
        response["X-Request-ID"] = request_id
        return response
