"""Browser tests: Playwright (sync API) driving Debian's Chromium against the site as
production serves it: a real Daphne process (tests.servers.daphne_server) answering both
the pages and the live case room's WebSockets, on the test database. Case pages open a
WebSocket, so a WSGI-only server would fail them.

Chromium is Debian's (/usr/bin/chromium, installed by .ci/run); Playwright's own
browser download is never used. Without it these tests skip with a reason, and CI
(WORKSPACE_STRICT_SKIPS=1) turns that skip into a failure.

The server shares the test's database, so these tests are transactional: what a test
writes is committed, and the server sees it. Seed data before asking for `open_page`.

Every page opened through `open_page` records console errors, uncaught exceptions,
Content-Security-Policy violations and failed requests in `problems`; a test asserts
that list is empty.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import daphne_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Report CSP violations on the console, where the listener below collects them. An init
# script is added through the DevTools protocol, so the page's own CSP does not block it.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(
    "CSP violation: " + event.effectiveDirective + " blocked " +
    (event.blockedURI || "inline") + " at " + event.sourceFile + ":" + event.lineNumber
  );
});
"""


@pytest.fixture(scope="module")
def _allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an asyncio loop marked as running in the test thread,
    which makes Django refuse ORM calls there (SynchronousOnlyOperation). The test thread
    only seeds and reads data and the live server runs in its own thread, so allow it
    while this module's browser is up, and put the setting back afterwards."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def chromium(_allow_orm_beside_playwright):
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        # Stopping also closes the event loop, so tests after this module may use
        # asyncio (async_to_sync, channel layers) in this thread again.
        playwright.stop()


@dataclass
class BrowserPage:
    """One signed-in person's tab, and everything that went wrong on it."""

    page: object
    problems: list[str] = field(default_factory=list)
    context: object = None


def _watch(page, tab: BrowserPage) -> None:
    page.on(
        "console",
        lambda message: tab.problems.append(f"console {message.type}: {message.text}")
        if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: tab.problems.append(f"uncaught: {error}"))
    page.on(
        "requestfailed",
        lambda request: tab.problems.append(
            f"request failed: {request.method} {request.url} ({request.failure})"
        ),
    )
    page.on(
        "response",
        lambda response: tab.problems.append(
            f"HTTP {response.status}: {response.request.method} {response.url}"
        ) if response.status >= 400 else None,
    )


@contextmanager
def tab_opener(chromium, base_url: str) -> Iterator:
    """A function opening tabs on `base_url`, each in a fresh browser context (its own
    cookies: one person per context) unless `beside` names a tab whose context (same
    person, same session) the new tab should share. Contexts close on exit."""
    contexts = []

    def open_(beside: BrowserPage | None = None) -> BrowserPage:
        if beside is not None:
            context = beside.context
        else:
            context = chromium.new_context(base_url=base_url, locale="en-GB")
            context.set_default_timeout(15_000)
            context.add_init_script(REPORT_CSP_VIOLATIONS)
            contexts.append(context)
        page = context.new_page()
        tab = BrowserPage(page=page, context=context)
        _watch(page, tab)
        return tab

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(autouse=True)
def _committed(transactional_db) -> None:
    """Every browser test is transactional: the server process must see its data."""


def server_env(request) -> dict[str, str]:
    """Settings a test asks its server for, as environment variables:
    `@pytest.mark.server_env(CASE_NOTES_PER_PAGE="3")`."""
    marker = request.node.get_closest_marker("server_env")
    return {name: str(value) for name, value in marker.kwargs.items()} if marker else {}


@pytest.fixture
def live_site(transactional_db, request) -> Iterator[str]:
    """Daphne serving the site (pages and WebSockets) on this test's database; its URL."""
    with daphne_server(env=server_env(request)) as url:
        yield url


@pytest.fixture
def open_page(chromium, live_site) -> Iterator:
    """Open a tab on the site: `open_page()` for a new person (a fresh browser context),
    `open_page(beside=tab)` for another tab of the same person."""
    with tab_opener(chromium, live_site) as open_:
        yield open_
