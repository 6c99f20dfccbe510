"""A new note's live notice is rendered from what its action wrote, not read back: it
must be the very notice a read of the committed note gives, for every audience, and
cost no query (one, for the people a note is about)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casenotes import events
from casenotes.models import CaseNote
from teams.models import Role

pytestmark = pytest.mark.django_db

S = CaseNote.Sensitivity


def _written_and_read(world, capture, **note):
    """The new note's notices as sent on commit (rendered as written, with the queries
    that took) and as a read of the note gives them."""
    with capture(execute=False) as callbacks:
        world.note(**note)
    (publish,) = [c for c in callbacks if getattr(c, "func", None) is events.publish]
    event, written = publish.args
    assert written is not None, "a new note's notice is rendered as written"
    with CaptureQueriesContext(connection) as queries:
        as_written = events.deliveries(event, written)
    return as_written, events.deliveries(event), queries


@pytest.mark.parametrize("sensitivity", [S.STANDARD, S.AGENCY_RESTRICTED, S.SEALED])
@pytest.mark.parametrize("final", [True, False], ids=["final", "draft"])
def test_a_new_notes_notice_is_the_one_a_read_of_it_gives_with_no_query(
    world, django_capture_on_commit_callbacks, sensitivity, final
):
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    readers = [world.social_worker] if sensitivity == S.SEALED else []
    as_written, read_back, queries = _written_and_read(
        world, django_capture_on_commit_callbacks, author=author, sensitivity=sensitivity,
        final=final, readers=readers, body="Mum attended her appointment; <b>not</b> markup.")
    assert as_written == read_back
    assert as_written  # somebody is sent it (the author at least)
    # A sealed note's readers are read when it is sent, not taken from the action.
    expected = 1 if sensitivity == S.SEALED and final else 0
    assert len(queries) == expected, [q["sql"] for q in queries]


def test_a_new_note_about_people_names_them_in_their_order_with_one_query(
    world, django_capture_on_commit_callbacks
):
    people = sorted(world.people.values(), key=lambda p: p.full_name, reverse=True)
    as_written, read_back, queries = _written_and_read(
        world, django_capture_on_commit_callbacks, author=world.social_worker, people=people)
    assert as_written == read_back
    html = as_written[0][1]["html"]
    assert all(person.full_name in html for person in people)
    assert len(queries) == 1, [q["sql"] for q in queries]
