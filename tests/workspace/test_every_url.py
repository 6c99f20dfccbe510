"""Every address with an id in it answers an id that is not one as "not found", never as
a server error: an id too large for any database, zero, or one that names nothing.

An address is typed, pasted or edited by hand; the case room's "missing and forbidden
look the same" answer must hold for the ids no row can have as well as for those of rows
the person may not see.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

#: Ids no row has: larger than a 64-bit column holds, larger than a 32-bit one, zero.
IMPOSSIBLE = [2**64, 2**31, 0]


def _routes_with_ids(resolver=None, namespace=""):
    """(route name, its int parameters) for every route that takes an id."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # the administration site: its own walk, in the access matrix
            yield from _routes_with_ids(entry, f"{namespace}{entry.namespace}:"
                                        if entry.namespace else namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            ints = [name for name, converter in entry.pattern.converters.items()
                    if type(converter).__name__ == "IntConverter"]
            if ints:
                yield f"{namespace}{entry.name}", ints


# The manager reaches the most of the case pages' checks; the IG officer, the IG pages'.
@pytest.mark.parametrize("username", ["team.manager", "ig.officer"])
def test_an_id_that_names_nothing_is_not_found_on_every_address(demo, username):
    client = demo.client(username)
    routes = list(_routes_with_ids())
    assert len(routes) > 30, routes  # the walk found the app's routes
    case = demo.case().pk
    problems = []
    for name, params in routes:
        for value in IMPOSSIBLE:
            # The impossible id in each place in turn, a real case's id elsewhere (so the
            # id checked is the one under test, not a missing case before it).
            for position in range(len(params)):
                kwargs = {p: (value if i == position else case) for i, p in enumerate(params)}
                url = reverse(name, kwargs=kwargs)
                for method in (client.get, client.post):
                    status = method(url).status_code
                    if status not in (404, 405):  # 405: a page that only takes the other
                        problems.append(f"{method.__name__.upper()} {url} ({name}): {status}")
    assert not problems, "\n".join(problems)
