"""Every link a signed-in person is shown leads to a working page, and every search or
filter form they are shown answers awkward input with a page, not a server error.

Each demo user (one of every role) starts at the home page and follows every link on
every page they reach, as far as the links go: each must answer 200, or redirect to a
page that does. A server error, a "not found" or a refusal behind a link the product
itself shows is a fault: the person was offered something they cannot have, or a page
breaks on real data (how "My actions" once failed for anyone with no action).
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest

from casenotes.management.commands.seed_demo import PEOPLE

# Links that are not pages to read: static files, the administration site (its own
# walk is in tests/test_access_matrix.py) and downloads that are tested for themselves.
NOT_FOLLOWED = ("/static/", "/admin/")
MAX_PAGES = 400


class _Links(HTMLParser):
    """The page's links, and its GET forms as (action, [field names])."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.forms: list[tuple[str, list[str]]] = []
        self._form: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        elif tag == "form" and (attrs.get("method") or "get").lower() == "get":
            self._form = []
            self.forms.append((attrs.get("action") or "", self._form))
        elif tag in ("input", "select", "textarea") and self._form is not None and attrs.get("name"):
            self._form.append(attrs["name"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


@dataclass
class Walk:
    """What a walk reached: {url: status}, the faults, and the GET forms as
    (page url, action, field names)."""

    seen: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    forms: list[tuple[str, str, list[str]]] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)  # url -> HTML, with keep_pages


def _walk(client, *, keep_pages: bool = False) -> Walk:
    """Every page reachable by links from the home page."""
    walk = Walk()
    queue = [("/", "(start)")]
    while queue and len(walk.seen) < MAX_PAGES:
        url, came_from = queue.pop(0)
        if url in walk.seen:
            continue
        response = client.get(url)
        hops = 0
        while response.status_code in (301, 302) and hops < 3:
            response = client.get(response["Location"])
            hops += 1
        walk.seen[url] = response.status_code
        if response.status_code != 200:
            walk.faults.append(f"{url} (linked from {came_from}) answered {response.status_code}")
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        page = _Links()
        page.feed(response.content.decode())
        if keep_pages:
            walk.pages[url] = response.content.decode()
        walk.forms += [(url, action, fields) for action, fields in page.forms]
        for href in page.hrefs:
            href, _fragment = urldefrag(href)
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not href.startswith("/"):
                continue
            if not href.startswith(NOT_FOLLOWED) and href not in walk.seen:
                queue.append((href, url))
    return walk


@pytest.mark.parametrize("username", [person[0] for person in PEOPLE])
def test_every_link_shown_to_a_person_leads_to_a_working_page(demo, username):
    walk = _walk(demo.client(username))
    seen = walk.seen
    assert not walk.faults, f"{username}: " + "; ".join(walk.faults)
    # The walk went beyond the home page: the menu's links were followed (the
    # administrator's is the shortest: home and password; the admin site is not walked).
    assert len(seen) >= (2 if username == "admin" else 4), f"{username} reached only {sorted(seen)}"
    assert "/accounts/password/" in seen
    assert len(seen) < MAX_PAGES, f"{username}: the walk hit its limit of {MAX_PAGES} pages"


# What people type, paste or hand-edit into a search or filter's address.
AWKWARD = ["", "   ", "x" * 5000, "nul\x00byte", "Zoë 😀 Ashworth", "-1", "0",
           "99999999999999999999999", "2026-02-30", "31/12/2026", "'; DROP TABLE x; --",
           "%_%", "<script>alert(1)</script>", "FS-24-0117", "line\r\nbreak"]


@pytest.mark.parametrize("username", ["social.worker", "team.manager", "ig.officer"])
def test_every_search_and_filter_form_answers_awkward_input_without_a_server_error(demo, username):
    client = demo.client(username)
    # Each form once, however many pages show it (a search box in every header).
    forms = {(action or url.split("?")[0], tuple(fields)) for url, action, fields in _walk(client).forms}
    assert forms, f"{username} was shown no search or filter form"
    for target, fields in sorted(forms):
        for value in AWKWARD:
            for query in [{name: value} for name in fields] + [dict.fromkeys(fields, value)]:
                response = client.get(target, query)
                assert response.status_code in (200, 400), (target, query, response.status_code)
                if response.status_code == 400:
                    assert b"govuk-error-summary" in response.content, (target, query)
