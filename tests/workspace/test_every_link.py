"""Every link a signed-in person is shown leads to a working page.

Each demo user (one of every role) starts at the home page and follows every link on
every page they reach, as far as the links go: each must answer 200, or redirect to a
page that does. A server error, a "not found" or a refusal behind a link the product
itself shows is a fault: the person was offered something they cannot have, or a page
breaks on real data (how "My actions" once failed for anyone with no action).
"""

from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest

from casenotes.management.commands.seed_demo import PEOPLE

# Links that are not pages to read: static files, the administration site (its own
# walk is in tests/test_access_matrix.py) and downloads that are tested for themselves.
NOT_FOLLOWED = ("/static/", "/admin/")
MAX_PAGES = 400


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    found = []
    for href in parser.hrefs:
        href, _fragment = urldefrag(href)
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not href.startswith("/"):
            continue
        if href.startswith(NOT_FOLLOWED):
            continue
        found.append(href)
    return found


def _walk(client) -> tuple[dict[str, int], list[str]]:
    """Every page reachable by links from the home page: {url: status}, and the faults."""
    seen: dict[str, int] = {}
    faults: list[str] = []
    queue = [("/", "(start)")]
    while queue and len(seen) < MAX_PAGES:
        url, came_from = queue.pop(0)
        if url in seen:
            continue
        response = client.get(url)
        hops = 0
        while response.status_code in (301, 302) and hops < 3:
            response = client.get(response["Location"])
            hops += 1
        seen[url] = response.status_code
        if response.status_code != 200:
            faults.append(f"{url} (linked from {came_from}) answered {response.status_code}")
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        for link in _links(response.content.decode()):
            if link not in seen:
                queue.append((link, url))
    return seen, faults


@pytest.mark.parametrize("username", [person[0] for person in PEOPLE])
def test_every_link_shown_to_a_person_leads_to_a_working_page(demo, username):
    seen, faults = _walk(demo.client(username))
    assert not faults, f"{username}: " + "; ".join(faults)
    # The walk went beyond the home page: the menu's links were followed (the
    # administrator's menu is the shortest: home, search, actions, password).
    assert len(seen) >= 4, f"{username} reached only {sorted(seen)}"
    assert len(seen) < MAX_PAGES, f"{username}: the walk hit its limit of {MAX_PAGES} pages"
