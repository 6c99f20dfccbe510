"""A long case record comes in pages of notes, newest first: every page but the last
is full, counted over exactly what the viewer may see (placeholders of other agencies'
restricted notes, never a sealed note not shared with them), filters (type, person,
words in a note or its addenda) and pages work together, and each page's read names its
page in the access log."""

import datetime
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from casenotes.actions import do_add_addendum
from casenotes.models import CaseNote
from teams.models import Role

PER_PAGE = 3


@pytest.fixture(autouse=True)
def _small_pages(settings):
    settings.CASE_NOTES_PER_PAGE = PER_PAGE


def _at(hours_ago: int):
    return timezone.now() - datetime.timedelta(hours=hours_ago)


def _shown(html: str) -> list[int]:
    """The notes a page lists, in order."""
    notes = html.split('id="notes"', 1)[1]  # nothing after the list names a note
    return [int(n) for n in re.findall(r'data-note="(\d+)"', notes)]


def _page(client, case, **query):
    response = client.get(reverse("casenotes:case_detail", args=[case.pk]), query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def record(world):
    """Seven notes on the Harper case, an hour apart, newest first: five standard by the
    social worker, one restricted to probation, one sealed by probation and shared with
    no one, in this order of age."""
    worker, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    notes = {}
    notes["s1"] = world.standard_note(worker, occurred_at=_at(1))
    notes["restricted"] = world.restricted_note(probation, occurred_at=_at(2))
    notes["s2"] = world.standard_note(worker, occurred_at=_at(3), note_type=CaseNote.NoteType.PHONE_CALL)
    notes["sealed"] = world.sealed_note(probation, occurred_at=_at(4))
    notes["s3"] = world.standard_note(worker, occurred_at=_at(5))
    notes["s4"] = world.standard_note(worker, occurred_at=_at(6), note_type=CaseNote.NoteType.PHONE_CALL)
    notes["s5"] = world.standard_note(worker, occurred_at=_at(7))
    return {name: note.pk for name, note in notes.items()}


def test_the_case_page_lists_notes_a_page_at_a_time_newest_first(world, record):
    client = Client()
    client.force_login(world.social_worker)
    # The social worker sees six: the restricted note as its placeholder, not the sealed one.
    first = _page(client, world.case)
    assert _shown(first) == [record["s1"], record["restricted"], record["s2"]]
    assert "Showing notes 1 to 3 of 6, newest first." in first
    assert 'aria-label="Page 2"' in first and "Older notes" in first and "Newer notes" not in first
    assert 'data-newer-pages="false" data-older-pages="true"' in first
    second = _page(client, world.case, page=2)
    assert _shown(second) == [record["s3"], record["s4"], record["s5"]]
    assert "Showing notes 4 to 6 of 6, newest first." in second
    assert "Newer notes" in second and "Older notes" not in second
    assert 'aria-current="page">2<' in second
    assert 'data-newer-pages="true" data-older-pages="false"' in second


def test_pages_are_counted_over_what_each_viewer_may_see(world, record):
    client = Client()
    # Probation sees all seven: their own restricted and sealed notes in full.
    client.force_login(world.user(Role.PROBATION_OFFICER))
    assert "of 7, newest first" in _page(client, world.case)
    assert _shown(_page(client, world.case, page=3)) == [record["s5"]]


def test_filters_and_pages_go_together(world, record):
    client = Client()
    client.force_login(world.social_worker)
    # Home visits the social worker can read in full: s1, s3, s5 (the placeholder does
    # not match a filter, and the phone calls do not).
    page = _page(client, world.case, note_type=CaseNote.NoteType.HOME_VISIT)
    assert _shown(page) == [record["s1"], record["s3"], record["s5"]]
    assert "Showing notes" not in page  # one page: no count, no pagination
    client.force_login(world.user(Role.PROBATION_OFFICER))
    page = _page(client, world.case, note_type=CaseNote.NoteType.HOME_VISIT)
    # Probation's home visits: s1, restricted, sealed, s3, s5 — two pages, and the
    # links keep the filter.
    assert _shown(page) == [record["s1"], record["restricted"], record["sealed"]]
    assert "note_type=home_visit&amp;page=2" in page
    assert _shown(_page(client, world.case, note_type=CaseNote.NoteType.HOME_VISIT, page=2)) == [
        record["s3"], record["s5"]]


def test_a_page_number_out_of_range_or_not_a_number_shows_the_nearest_page(world, record):
    client = Client()
    client.force_login(world.social_worker)
    assert _shown(_page(client, world.case, page=99)) == [record["s3"], record["s4"], record["s5"]]
    assert _shown(_page(client, world.case, page="abc")) == [
        record["s1"], record["restricted"], record["s2"]]
    assert _shown(_page(client, world.case, page="-1")) == [
        record["s3"], record["s4"], record["s5"]]


def test_each_page_read_names_its_page_in_the_access_log(world, record):
    client = Client()
    client.force_login(world.social_worker)
    _page(client, world.case, page=2)
    entry = AuditEvent.objects.filter(action=AuditAction.CASE_VIEWED).latest("id")
    assert (entry.case_id, entry.actor_id) == (world.case.pk, world.social_worker.pk)
    assert entry.reason == "notes page 2 of 2"


def test_a_page_costs_the_same_queries_however_long_the_record(world, record):
    client = Client()
    client.force_login(world.social_worker)
    url = reverse("casenotes:case_detail", args=[world.case.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as short:
        client.get(url)
    for hours in range(10, 40):
        world.standard_note(world.social_worker, occurred_at=_at(hours))
    with CaptureQueriesContext(connection) as long:
        html = client.get(url).content.decode()
    assert "of 36, newest first" in html
    assert len(long) == len(short)


def test_words_find_the_notes_and_addenda_that_say_them_only_among_notes_read_in_full(world):
    worker, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    visit = world.standard_note(worker, body="Ellie's SCHOOL uniform was clean.", occurred_at=_at(1))
    other = world.standard_note(worker, body="Tom was asleep.", occurred_at=_at(2))
    do_add_addendum(acting_user=worker, note=other, body="The school rang afterwards.")
    world.standard_note(worker, body="Nothing about learning.", occurred_at=_at(3))
    restricted = world.restricted_note(probation, body="Licence: school run agreed.",
                                       occurred_at=_at(4))
    client = Client()
    client.force_login(worker)
    page = _page(client, world.case, words="school")
    # Case-insensitive, in the note or its addenda; another agency's restricted note
    # never answers "does it say this?", not even as its placeholder.
    assert _shown(page) == [visit.pk, other.pk]
    assert 'value="school"' in page and "Clear filters" in page
    client.force_login(probation)
    assert _shown(_page(client, world.case, words="school")) == [visit.pk, other.pk, restricted.pk]
    entry = AuditEvent.objects.filter(action=AuditAction.CASE_VIEWED).latest("id")
    assert entry.reason == "notes page 1 of 1; filtered"
    assert "school" not in entry.reason  # the words looked for are not written down


def test_words_too_long_are_refused_with_a_message_and_the_list_is_not_narrowed(world):
    worker = world.social_worker
    note = world.standard_note(worker, body="Home visit.")
    client = Client()
    client.force_login(worker)
    page = _page(client, world.case, words="x" * 101)
    assert "Enter words to find of 100 characters or fewer." in page
    assert _shown(page) == [note.pk]


def test_a_note_unshared_while_its_page_is_read_is_not_shown(world, monkeypatch):
    from casenotes import events, selectors
    from casenotes.actions import do_share_sealed_note
    from casenotes.permissions import policy

    author, reader = world.user(Role.PROBATION_OFFICER), world.social_worker
    sealed = world.sealed_note(author, readers=[reader])
    standard = world.standard_note(author)
    access = policy.access_case(reader, world.case.pk)
    read_in_full = events.with_entry_data

    def unshared_in_between(queryset):
        # After the page's notes were chosen, before they are read in full.
        do_share_sealed_note(acting_user=author, note=CaseNote.objects.get(pk=sealed.pk),
                             readers=[])
        return read_in_full(queryset)

    monkeypatch.setattr(selectors.events, "with_entry_data", unshared_in_between)
    page = selectors.case_page(access)
    assert [note.pk for note, _ in page["entries"]] == [standard.pk]
