"""Structured logs: one JSON object per line, with the request id of the page or socket
being served (the same id as the access log's and the X-Request-ID header).

Log calls in this code base name ids and kinds, never note text or other case content;
the audit trail, not the log, records who saw what. Values can still carry user input
(a username tried at sign-in, a path): JSON escapes CR and LF, and the plain text format
(LOG_FORMAT=text, for development) shows them as \\r and \\n, so no value can start a
line that looks like a record of its own.
"""

import logging


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (empty outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from audit import context

        record.request_id = getattr(context.current(), "request_id", "") or ""
        return True


class TextFormatter(logging.Formatter):
    """Plain lines (LOG_FORMAT=text): CR and LF in the message or any field are shown as
    \\r and \\n; a traceback follows its record on indented lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")

    def format(self, record: logging.LogRecord) -> str:
        # Only a traceback or stack (added below the message) still holds CR or LF here.
        return super().format(record).replace("\r", "\\r").replace("\n", "\n    ")
