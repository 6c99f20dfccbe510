"""Structured logs: one JSON object per line, with the request id of the page or socket
being served (the same id as the access log's and the X-Request-ID header).

Log calls in this code base name ids and kinds, never note text or other case content;
the audit trail, not the log, records who saw what.
"""

import logging


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (empty outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from audit import context

        record.request_id = getattr(context.current(), "request_id", "") or ""
        return True
