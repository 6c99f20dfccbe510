"""The case record's CSV download: each note as the person downloading may read it
(placeholders as placeholders, hidden notes not at all), recorded as an export."""

import csv
import io

from django.test import Client
from django.urls import reverse

from audit.models import AuditAction
from casenotes.actions import do_add_addendum, do_open_break_glass
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
                       "About", "Addenda"]
    full, placeholder = sorted(rows[1:], key=lambda row: row[1])
    assert full[1:] == ["Home visit", worker.get_full_name(), "Children's services", "Final",
                        "'=cmd| Ellie seen at school.", "Yes", "Ellie Harper", ""]
    # A placeholder: agency, date and state only — not whom it is about, nor significance.
    assert placeholder[1:] == ["Restricted note", "", "Probation", "Final", "", "", "", ""]
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


def test_the_record_downloads_each_note_with_its_addenda_and_a_placeholder_without(world):
    worker, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    note = world.standard_note(worker, body="Ellie seen at school.")
    do_add_addendum(acting_user=worker, note=note, body="Correction: it was Tom's school.")
    do_add_addendum(acting_user=probation, note=note, body="Dean was at the probation office.")
    restricted = world.restricted_note(probation, body="Licence conditions.")
    do_add_addendum(acting_user=probation, note=restricted, body="Licence varied (R-77).")
    rows = list(csv.reader(io.StringIO(_export(worker, world.case).content.decode())))
    full, placeholder = sorted(rows[1:], key=lambda row: row[1])
    first, second = full[8].split("\n\n")
    assert first.startswith("Addendum ") and first.endswith(
        f", {worker.get_full_name()} (Children's services): Correction: it was Tom's school.")
    assert second.endswith(f", {probation.get_full_name()} (Probation): "
                           "Dean was at the probation office.")
    assert placeholder[8] == ""
    assert "R-77" not in "".join(",".join(row) for row in rows)
