"""The case record's CSV download: each note as the person downloading may read it
(placeholders as placeholders, hidden notes not at all), recorded as an export."""

import csv
import io

from django.test import Client
from django.urls import reverse

from audit.models import AuditAction
from casenotes.actions import do_open_break_glass
from teams.models import Role
from tests.helpers import AuditWatch


def _export(user, case):
    client = Client()
    client.force_login(user)
    return client.get(reverse("casenotes:case_export", args=[case.pk]))


def test_the_record_downloads_each_note_as_the_reader_may_see_it(world):
    worker = world.social_worker
    world.standard_note(worker, is_significant=True, people=[world.people["ellie"]],
                        body="=cmd| Ellie seen at school.")
    world.restricted_note(world.user(Role.PROBATION_OFFICER), is_significant=True,
                          people=[world.people["dean"]], body="Dean's licence conditions.")
    world.sealed_note(world.user(Role.DA_VICTIM_WORKER), body="The refuge's address.")
    watch = AuditWatch()
    response = _export(worker, world.case)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["When", "Type", "Author", "Agency", "State", "Note", "Significant event",
                       "About"]
    full, placeholder = sorted(rows[1:], key=lambda row: row[1])
    assert full[1:] == ["Home visit", worker.get_full_name(), "Children's services", "Final",
                        "'=cmd| Ellie seen at school.", "Yes", "Ellie Harper"]
    # A placeholder: agency, date and state only — not whom it is about, nor significance.
    assert placeholder[1:] == ["Restricted note", "", "Probation", "Final", "", "", ""]
    assert "refuge" not in response.content.decode()
    entry = watch.one(AuditAction.CASE_EXPORTED)
    assert entry.case_id == world.case.pk and entry.reason == "2 notes"


def test_emergency_access_cannot_download_the_record(world):
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    do_open_break_glass(acting_user=outsider, case=world.case, reason_code="other",
                        reason="Police at the door out of hours.")
    world.standard_note(world.social_worker, body="A visit.")
    response = _export(outsider, world.case)
    assert response.status_code == 404 and b"A visit." not in response.content
