"""Daphne, with an access log that never writes a query string.

The product's pages carry what people look for in their query strings: a family's name
searched for, words looked for in a case's notes, an access-log search, a page's `next=`.
Daphne's own access log writes each request's whole URI, so those would reach the
server's logs (SECURITY.md 11: no note text in the logs; the audit trail records the
reads, without the words). This runs Daphne's command line unchanged, with its access
log writing each path without its query string:

    python -m workspace.serve -b 0.0.0.0 -p 8000 workspace.asgi:application
"""

from daphne import cli
from daphne.access import AccessLogGenerator


class PathOnlyAccessLog(AccessLogGenerator):
    """Daphne's access log (NCSA-style lines), each path cut at its query string."""

    def __call__(self, protocol, action, details):
        path = details.get("path")
        if isinstance(path, str) and "?" in path:
            details = {**details, "path": path.split("?", 1)[0]}
        super().__call__(protocol, action, details)


def main() -> None:
    # Daphne's CLI builds its access log from this name when it runs.
    cli.AccessLogGenerator = PathOnlyAccessLog
    cli.CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
