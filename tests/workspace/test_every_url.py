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


def _real_ids(demo) -> dict[str, int]:
    """A real object for each kind of id in an address, all of one case where they
    belong to one (the Ashworth case, with the demo made busier: a discussion running,
    an emergency access, a transfer, a kept text), so that the id under test is the
    only one that names nothing."""
    from casenotes.models import CaseGrant, CaseTransfer
    from discussions.actions import do_save_section
    from discussions.models import AgendaItem, AgreedAction, Discussion, KeptText, Section
    from teams.models import Team
    from tests.workspace.test_every_form import _busy

    _busy(demo)
    case, manager = demo.case(), demo.user("team.manager")
    section = Section.objects.filter(item__case=case).first()
    do_save_section(acting_user=manager, section=section, text="Written first.", version=1)
    do_save_section(acting_user=demo.user("social.worker"), section=section,
                    text="Written at the same time.", version=1)  # kept beside it
    return {
        "case_id": case.pk,
        "note_id": case.notes.filter(state="final", sensitivity="standard").first().pk,
        "person_id": case.people.first().pk, "grant_id": CaseGrant.objects.get(case=case).pk,
        "transfer_id": CaseTransfer.objects.get().pk,
        "team_id": Team.objects.get(name__contains="Family Safeguarding").pk,
        "discussion_id": Discussion.objects.get().pk, "section_id": section.pk,
        "kept_id": KeptText.objects.get().pk,
        "item_id": AgendaItem.objects.get(case=case).pk,
        "action_id": AgreedAction.objects.get().pk, "user_id": demo.user("social.worker").pk,
    }


# The manager reaches the most of the case pages' checks; the IG officer, the IG pages'.
@pytest.mark.parametrize("username", ["team.manager", "ig.officer"])
def test_an_id_that_names_nothing_is_not_found_on_every_address(demo, username):
    real = _real_ids(demo)
    client = demo.client(username)
    routes = list(_routes_with_ids())
    assert len(routes) > 30, routes  # the walk found the app's routes
    unmapped = {p for _, params in routes for p in params} - set(real)
    assert not unmapped, f"give these ids a real object in _real_ids: {sorted(unmapped)}"
    # With every id real, the pages this person may open answer (so the ids used beside
    # the one under test name real objects): the case, team and discussion pages for the
    # manager, the access log's for the IG officer.
    answered = [name for name, params in routes
                if client.get(reverse(name, kwargs={p: real[p] for p in params})).status_code
                in (200, 302)]
    if username == "ig.officer":
        assert set(answered) == {"audit:break_glass_review", "audit:case_report",
                                 "audit:user_report"}, answered
    else:
        assert len(answered) >= 20 and "casenotes:note_detail" in answered, answered
    problems = []
    for name, params in routes:
        for value in IMPOSSIBLE:
            # The impossible id in each place in turn, real ids elsewhere (so the id
            # checked is the one under test, not a missing object before it).
            for position in range(len(params)):
                kwargs = {p: (value if i == position else real[p]) for i, p in enumerate(params)}
                url = reverse(name, kwargs=kwargs)
                for method in (client.get, client.post):
                    status = method(url).status_code
                    if status not in (404, 405):  # 405: a page that only takes the other
                        problems.append(f"{method.__name__.upper()} {url} ({name}): {status}")
    assert not problems, "\n".join(problems)
