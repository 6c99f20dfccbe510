"""The family's plan: what the team is worried about, what is working well, what needs
to happen and what happens if things do not get better, with its next review date.
Everyone on the case reads it; those who add to the case write it together. Every
version is in the case's history, each save is audited (the parts changed, never their
text) and announced live; a save based on an older version is refused with both texts
shown; bad input changes nothing."""

import datetime

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, Outcome
from casenotes.actions import PlanChanged, do_close_case, do_update_plan
from casenotes.models import CaseEvent, CasePlan
from casenotes.permissions import NotFound
from teams.models import Role
from tests.helpers import AuditWatch, assert_audit, dead_summary_links, write_fingerprint

WORRIES = "Dean's drinking at weekends; Ellie has missed school on Mondays."
STEPS = "Tom (probation) to see Dean weekly.\nSchool to tell the social worker of any absence."


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(world, name="plan_detail"):
    return reverse(f"casenotes:{name}", args=[world.case.pk])


def _plan_post(based_on=0, **fields):
    return {"worries": WORRIES, "strengths": "Kayleigh takes the children to every appointment.",
            "next_steps": STEPS, "contingency": "", "review_day": "", "review_month": "",
            "review_year": "", "based_on": based_on, **fields}


def _review(day: datetime.date) -> dict:
    return {"review_day": str(day.day), "review_month": str(day.month),
            "review_year": str(day.year)}


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _event_kinds(world) -> list[str]:
    return list(CaseEvent.objects.filter(case=world.case).order_by("seq")
                .values_list("kind", flat=True))


def _without_audit(fingerprint: dict) -> dict:
    return {key: value for key, value in fingerprint.items() if key != "audit"}


def _save(world, user, based_on=0, **sections):
    return do_update_plan(acting_user=user, case=world.case, based_on=based_on,
                          sections={"worries": WORRIES, **sections}, review_on=None)


# --- writing the plan ---------------------------------------------------------------------

def test_the_team_writes_the_plan_together_with_history_audit_and_a_live_notice(world):
    social_worker, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    client = _client(social_worker)
    case_page = client.get(reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert "No plan has been written for this family yet." in case_page
    assert f'href="{_url(world, "plan_edit")}"' in case_page
    events_before, watch = _event_kinds(world), AuditWatch()
    review = timezone.localdate() + datetime.timedelta(days=42)
    response = client.post(_url(world, "plan_edit"), _plan_post(**_review(review)))
    assert response.status_code == 302 and response.url == _url(world)
    assert _messages(response) == ["Plan saved."]
    plan = CasePlan.objects.get(case=world.case)
    assert (plan.worries, plan.next_steps, plan.review_on, plan.version) == (
        WORRIES, STEPS, review, 1)
    assert plan.updated_by == social_worker
    assert plan.history.get().history_user_id == social_worker.pk
    # A save that goes through shows no form, so records no read of it.
    assert watch.actions() == [AuditAction.PLAN_UPDATED]
    entry = watch.one(AuditAction.PLAN_UPDATED)
    assert_audit(entry, action=AuditAction.PLAN_UPDATED, actor=social_worker,
                 case_id=world.case.pk, object_type="plan", object_id=plan.pk)
    assert entry.reason == ("changed: what we are worried about, what is working well, "
                            "what needs to happen, next review")
    assert "Dean" not in entry.reason
    assert _event_kinds(world) == [*events_before, CaseEvent.Kind.CASE_UPDATED]

    # A colleague of another agency adds to it; the page shows the plan as it is now.
    other = _client(probation)
    form = other.get(_url(world, "plan_edit")).content.decode()
    assert 'name="based_on" value="1"' in form and "Dean&#x27;s drinking" in form
    # The form warns that the plan is for everyone on the case, whatever their agency.
    assert 'id="plan-audience"' in form and "in an agency-restricted or sealed note" in form
    response = other.post(_url(world, "plan_edit"), _plan_post(
        based_on=1, contingency="A child protection conference.", **_review(review)))
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.version, plan.updated_by, plan.contingency) == (
        2, probation, "A child protection conference.")
    assert watch.new()[-1].reason == "changed: if things do not get better"
    page = other.get(_url(world)).content.decode()
    assert "A child protection conference." in page and "Tom (probation) to see Dean weekly." in page
    assert review.strftime("%-d %B %Y") in page
    summary = client.get(reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert f'href="{_url(world)}"' in summary and "Read the plan" in summary


def test_opening_the_plan_or_its_form_is_a_recorded_read(world):
    reader = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    client = _client(reader)
    watch = AuditWatch()
    page = client.get(_url(world))
    assert page.status_code == 200 and "No plan has been written" in page.content.decode()
    entry = watch.one(AuditAction.PLAN_VIEWED)
    assert_audit(entry, action=AuditAction.PLAN_VIEWED, actor=reader,
                 case_id=world.case.pk, object_type="case", object_id=world.case.pk)
    assert entry.reason == "plan"
    plan = _save(world, world.social_worker)
    for name, reason in (("plan_detail", "plan"), ("plan_edit", "plan form")):
        watch = AuditWatch()
        assert client.get(_url(world, name)).status_code == 200
        entry = watch.one(AuditAction.PLAN_VIEWED)
        assert (entry.object_type, entry.object_id, entry.reason) == ("plan", str(plan.pk), reason)


def test_every_version_of_the_plan_is_in_the_case_history_with_who_and_when(world):
    first = _save(world, world.social_worker)
    _save(world, world.team_manager, based_on=first.version, next_steps="Weekly visits.")
    page = _client(world.user(Role.RECOVERY_WORKER)).get(
        reverse("casenotes:case_history", args=[world.case.pk])).content.decode()
    assert page.count("Family plan —") == 2
    assert world.social_worker.get_full_name() in page and world.team_manager.get_full_name() in page
    assert "What needs to happen" in page and "Weekly visits." in page
    assert "<del>—</del>" in page  # the part was empty before


# --- a save based on an older version -----------------------------------------------------

def test_two_people_changing_different_parts_at_once_both_keep_their_changes(world):
    _save(world, world.team_manager)
    first, second = _client(world.social_worker), _client(world.user(Role.DA_VICTIM_WORKER))
    review = _day(30)
    assert first.post(_url(world, "plan_edit"), _plan_post(
        based_on=1, strengths="Grandmother helps after school.")).status_code == 302
    # The second opened the plan at version 1 too, and changed other parts.
    response = second.post(_url(world, "plan_edit"), _plan_post(
        based_on=1, strengths="", contingency="Legal planning meeting.", **_review(review)))
    assert response.status_code == 302
    assert _messages(response) == ["Plan saved. Someone else changed other parts of it while "
                                   "you had it open: their changes are kept too."]
    plan = CasePlan.objects.get(case=world.case)
    assert (plan.strengths, plan.contingency, plan.review_on, plan.version) == (
        "Grandmother helps after school.", "Legal planning meeting.", review, 3)


def test_a_part_both_changed_at_once_is_refused_and_both_texts_are_shown(world):
    first, second = _client(world.social_worker), _client(world.user(Role.DA_VICTIM_WORKER))
    _save(world, world.team_manager)
    assert 'value="1"' in second.get(_url(world, "plan_edit")).content.decode()
    assert first.post(_url(world, "plan_edit"), _plan_post(
        based_on=1, worries="Saved first.", contingency="Added by the first.")).status_code == 302
    before, watch = write_fingerprint(), AuditWatch()
    typed = "Typed meanwhile: Kayleigh has a new partner."
    response = second.post(_url(world, "plan_edit"), _plan_post(based_on=1, worries=typed))
    assert response.status_code == 409
    html = response.content.decode()
    assert ("changed &#x27;What we are worried about&#x27; of the plan at" in html
            and "and so did you. Nothing you typed has been saved yet." in html)
    # The clashing part is marked, and the error summary links to it.
    assert '<a href="#id_worries">' in html and "changed this too. Your text is here" in html
    assert "Change the family plan" in html
    assert world.social_worker.get_full_name() in html
    assert 'id="saved-now"' in html and "Saved first." in html  # the plan saved now
    form = html[html.index("<form"):]
    assert typed in form  # what was typed stays in the form where it clashes
    assert "Added by the first." in form  # and the other's change is taken where it does not
    assert 'name="based_on" value="2"' in form  # the next save is based on what is shown
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert watch.actions() == [AuditAction.PLAN_VIEWED]
    again = second.post(_url(world, "plan_edit"), _plan_post(
        based_on=2, worries=typed, contingency="Added by the first."))
    assert again.status_code == 302
    plan = CasePlan.objects.get(case=world.case)
    assert (plan.worries, plan.contingency) == (typed, "Added by the first.")


def test_the_action_refuses_text_it_cannot_keep_and_saves_nothing(world):
    with pytest.raises(ValidationError) as refused:
        _save(world, world.social_worker, next_steps="a\x00b", contingency="y" * 10_001)
    assert set(refused.value.message_dict) == {"next_steps", "contingency"}
    assert not CasePlan.objects.exists()


def test_the_action_refuses_an_old_version_with_the_plan_saved_now(world):
    _save(world, world.social_worker)
    with pytest.raises(PlanChanged) as refused:
        _save(world, world.team_manager, based_on=0, worries="Based on nothing.")
    assert refused.value.current.worries == WORRIES
    assert refused.value.clashes == ["worries"]
    assert CasePlan.objects.get(case=world.case).version == 1
    with pytest.raises(ValidationError) as refused:  # a version the plan never had
        _save(world, world.team_manager, based_on=7, strengths="Made up.")
    assert refused.value.message_dict == {"based_on": ["Reload the page and make your changes "
                                                       "again."]}
    assert CasePlan.objects.get(case=world.case).version == 1


def test_a_save_that_changes_nothing_writes_nothing(world):
    client = _client(world.social_worker)
    client.post(_url(world, "plan_edit"), _plan_post(), follow=True)
    before, watch = write_fingerprint(), AuditWatch()
    response = client.post(_url(world, "plan_edit"), _plan_post(based_on=1))
    assert response.status_code == 302
    assert _messages(response) == ["Nothing was changed in the plan."]
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert watch.actions() == []  # no write, and no form shown


# --- bad input ---------------------------------------------------------------------------

def _day(days: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=days)


@pytest.mark.parametrize(("fields", "message"), [
    ({"worries": "x" * 10_001}, "&#x27;What we are worried about&#x27; must be 10,000 characters "
                                "or fewer (it has 10,001)."),
    ({"next_steps": "a\x00b"}, "Null characters are not allowed."),
    (_review(_day(-1)), "The review date must be today or in the future."),
    (_review(_day(800)), "The review date must be within the next 2 years."),
    ({"review_day": "31", "review_month": "2", "review_year": "2027"},
     "Enter a real review date, for example 15 1 2027"),
    ({"review_day": "3", "review_month": "", "review_year": "2027"},
     "Enter a real review date, for example 15 1 2027"),
    ({"based_on": ""}, "Reload the page and make your changes again."),
    ({"based_on": "-1"}, "Reload the page and make your changes again."),
    ({"based_on": "5"}, "Reload the page and make your changes again."),
    ({"review_day": "3", "review_month": "12", "review_year": "20277"},
     "Enter a real review date, for example 15 1 2027"),
    ({"review_day": "99999999999999999999999", "review_month": "12", "review_year": "2027"},
     "Enter a real review date, for example 15 1 2027"),
], ids=["too-long", "nul", "review-in-the-past", "review-too-far", "no-such-day",
        "part-of-a-date", "no-version", "negative-version", "unknown-version", "five-digit-year",
        "day-too-large-for-any-date"])
def test_bad_input_gets_a_message_keeps_the_text_and_changes_nothing(world, fields, message):
    client = _client(world.social_worker)
    before, watch = write_fingerprint(), AuditWatch()
    response = client.post(_url(world, "plan_edit"), _plan_post(**fields))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and "There is a problem" in html
    assert html.count('class="govuk-error-summary"') == 1
    assert dead_summary_links(html) == []  # a hidden version's message links nowhere
    assert "Ensure this value" not in html  # one message a person can act on
    assert "Kayleigh takes the children to every appointment." in html  # the rest is kept
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert watch.actions() == [AuditAction.PLAN_VIEWED]


def test_a_review_date_already_passed_may_stay_and_is_marked_overdue(world):
    plan = do_update_plan(acting_user=world.social_worker, case=world.case, based_on=0,
                          sections={"worries": WORRIES}, review_on=_day(1))
    CasePlan.objects.filter(pk=plan.pk).update(review_on=_day(-3))  # time passes
    client = _client(world.social_worker)
    for url in (_url(world), reverse("casenotes:case_detail", args=[world.case.pk])):
        assert "Review overdue" in client.get(url).content.decode()
    # Changing another part keeps the date the plan already has.
    response = client.post(_url(world, "plan_edit"), _plan_post(
        based_on=plan.version, **_review(_day(-3))))
    assert response.status_code == 302
    assert CasePlan.objects.get(pk=plan.pk).version == 2


def test_unexpected_fields_change_nothing_they_name(world):
    _save(world, world.team_manager)
    client = _client(world.social_worker)
    response = client.post(_url(world, "plan_edit"), {
        **_plan_post(based_on=1), "version": 99, "updated_by": world.team_manager.pk,
        "case": world.other_case.pk, "updated_at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 302
    plan = CasePlan.objects.get(case=world.case)
    assert (plan.version, plan.updated_by, plan.case) == (2, world.social_worker, world.case)
    assert plan.updated_at > timezone.now() - datetime.timedelta(minutes=1)
    assert not CasePlan.objects.filter(case=world.other_case).exists()


def test_a_database_fault_saves_nothing_and_keeps_the_text(world, monkeypatch):
    from casenotes.actions import plan as plan_actions

    def broken(**kwargs):
        raise DatabaseError("the audit table is unavailable")

    monkeypatch.setattr(plan_actions, "record", broken)
    before = write_fingerprint()
    response = _client(world.social_worker).post(_url(world, "plan_edit"), _plan_post())
    assert response.status_code == 503
    html = response.content.decode()
    assert "The plan could not be saved because of a fault on our side." in html
    assert "Dean&#x27;s drinking at weekends" in html
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert not CasePlan.objects.exists() and not CasePlan.history.exists()


# --- who may write it --------------------------------------------------------------------

def test_a_closed_case_keeps_its_plan_readable_and_unchangeable(world):
    _save(world, world.social_worker)
    do_close_case(acting_user=world.team_manager, case=world.case)
    client = _client(world.social_worker)
    page = client.get(_url(world)).content.decode()
    assert WORRIES.replace("'", "&#x27;") in page
    assert "Its plan can be read but not changed." in page
    assert _url(world, "plan_edit") not in page
    form = client.get(_url(world, "plan_edit")).content.decode()
    assert 'name="worries"' not in form
    before = write_fingerprint()
    # Closed while someone had the form open: the save is refused, and what they typed
    # is still on the page to copy.
    response = client.post(_url(world, "plan_edit"), _plan_post(based_on=1, worries="Too late."))
    assert response.status_code == 400
    html = response.content.decode()
    assert "This case is closed. Its plan cannot be changed." in html
    assert "Too late." in html and "Tom (probation) to see Dean weekly." in html
    assert _without_audit(write_fingerprint()) == _without_audit(before)


@pytest.mark.parametrize("who", ["other team", "IG officer", "administrator"])
def test_those_off_the_case_get_not_found_a_denial_and_no_change(world, who):
    _save(world, world.social_worker)
    user = {"other team": world.locality_users[Role.SOCIAL_WORKER],
            "IG officer": world.user(Role.IG_OFFICER),
            "administrator": world.user(Role.ADMINISTRATOR)}[who]
    client = _client(user)
    before, watch = write_fingerprint(), AuditWatch()
    assert client.get(_url(world)).status_code == 404
    assert client.get(_url(world, "plan_edit")).status_code == 404
    response = client.post(_url(world, "plan_edit"), _plan_post(based_on=1, worries="Not mine."))
    assert response.status_code == 404
    assert WORRIES not in response.content.decode()
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert [e.outcome for e in watch.new()] == [Outcome.DENIED] * 3
    with pytest.raises(NotFound):
        _save(world, user, based_on=1, worries="Not mine.")


def test_the_caseload_marks_a_plan_review_due_within_two_weeks_or_overdue(world):
    plan = do_update_plan(acting_user=world.social_worker, case=world.case, based_on=0,
                          sections={"worries": WORRIES}, review_on=_day(30))
    client = _client(world.user(Role.PROBATION_OFFICER))
    caseload = reverse("casenotes:caseload")
    due, overdue = f'id="plan-due-{world.case.pk}"', f'id="plan-overdue-{world.case.pk}"'
    page = client.get(caseload).content.decode()
    assert due not in page and overdue not in page
    CasePlan.objects.filter(pk=plan.pk).update(review_on=_day(14))  # two weeks to go
    page = client.get(caseload).content.decode()
    assert due in page and f"Plan review due {_day(14).day} {_day(14):%b %Y}" in page and overdue not in page
    assert "Review due soon" in client.get(_url(world)).content.decode()
    CasePlan.objects.filter(pk=plan.pk).update(review_on=_day(-1))  # the day passes
    page = client.get(caseload).content.decode()
    assert overdue in page and "Plan review overdue" in page and due not in page


def test_the_caseload_says_the_plan_changed_since_the_person_last_opened_the_case(world):
    probation, social_worker = world.user(Role.PROBATION_OFFICER), world.social_worker
    reader, writer = _client(probation), _client(social_worker)
    caseload, case_page = reverse("casenotes:caseload"), reverse(
        "casenotes:case_detail", args=[world.case.pk])
    tag = f'id="plan-changed-{world.case.pk}"'
    reader.get(case_page)  # opened before the plan was written
    _save(world, social_worker)
    assert tag in reader.get(caseload).content.decode()
    # Not for the one who changed it; gone once the reader opens the case again.
    writer.get(case_page)
    _save(world, social_worker, based_on=1, contingency="A child protection conference.")
    assert tag not in writer.get(caseload).content.decode()
    reader.get(case_page)
    assert tag not in reader.get(caseload).content.decode()


def test_a_review_date_someone_else_moved_is_merged_even_when_the_one_seen_has_passed(world):
    plan = do_update_plan(acting_user=world.social_worker, case=world.case, based_on=0,
                          sections={"worries": WORRIES}, review_on=_day(1))
    CasePlan.objects.filter(pk=plan.pk).update(review_on=_day(-2))  # overdue when opened
    CasePlan.history.filter(version=1).update(review_on=_day(-2))
    # The manager opened it and set a new date; the worker, on the same version, changed
    # a part and left the (passed) date as it was: both are kept, and no date error.
    do_update_plan(acting_user=world.team_manager, case=world.case, based_on=1,
                   sections={"worries": WORRIES}, review_on=_day(14))
    saved = do_update_plan(acting_user=world.social_worker, case=world.case, based_on=1,
                           sections={"worries": WORRIES, "strengths": "Grandmother helps."},
                           review_on=_day(-2))
    assert (saved.review_on, saved.strengths, saved.version) == (_day(14), "Grandmother helps.", 3)


def test_a_person_form_refused_because_the_case_closed_keeps_what_was_typed(world):
    client = _client(world.social_worker)
    do_close_case(acting_user=world.team_manager, case=world.case)
    response = client.post(reverse("casenotes:person_add", args=[world.case.pk]), {
        "full_name": "Baby Harper", "role_in_family": "child", "birth_day": "",
        "birth_month": "", "birth_year": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "People cannot be added to a closed case." in html and 'value="Baby Harper"' in html


# --- the group case discussion's record ---------------------------------------------------

DISCUSSED = {"worries": "Bruises seen on Ellie at nursery.",
             "working_well": "Kayleigh asked for help early.",
             "needs": "A parenting course for both parents.",
             "decision": "Remain on the child protection plan."}


def _signed_off(world):
    """A group case discussion of the Harper case, its record written and signed off
    (filed into the case as a finalised note), with one action agreed."""
    from discussions import actions as discussion_actions
    from discussions.models import Section
    from tests.discussions.conftest import schedule

    manager = world.team_manager
    discussion = discussion_actions.do_start_discussion(acting_user=manager,
                                                        discussion=schedule(world))
    item = discussion.items.get()
    for kind, text in DISCUSSED.items():
        discussion_actions.do_save_section(acting_user=manager, section=item.sections.get(kind=kind),
                                           text=text, version=1)
    assert set(DISCUSSED) == {kind.value for kind in Section.Kind}
    discussion_actions.do_add_action(acting_user=manager, item=item, owner=world.social_worker,
                                     description="Book the parenting course",
                                     due_on=datetime.date(2027, 1, 15))
    discussion_actions.do_sign_off(acting_user=manager, discussion=discussion)
    item.refresh_from_db()
    return item


def _form(response):
    assert response.status_code == 200
    return response.context["form"]


def test_a_discussion_signed_off_since_the_plan_changed_is_pointed_out_with_a_way_to_add_it(world):
    _save(world, world.social_worker)
    item = _signed_off(world)
    held = timezone.localtime(item.discussion.started_at).strftime("%-d %B %Y")
    client = _client(world.user(Role.PROBATION_OFFICER))
    add = f'href="{_url(world, "plan_edit")}?add=discussion"'
    for url in (_url(world), reverse("casenotes:case_detail", args=[world.case.pk])):
        page = client.get(url).content.decode()
        assert 'id="plan-discussed"' in page
        assert f"The group case discussion on {held} was signed off after the plan" in page
        assert add in page and "Update the plan from its record" in page
    # Once the plan has been changed since, there is nothing to point out.
    _save(world, world.social_worker, based_on=1, contingency="A child protection conference.")
    for url in (_url(world), reverse("casenotes:case_detail", args=[world.case.pk])):
        assert 'id="plan-discussed"' not in client.get(url).content.decode()
    # The form still offers the record, as the last discussion rather than a newer one.
    form = client.get(_url(world, "plan_edit")).content.decode()
    assert f"The last group case discussion about this family was on {held}." in form
    assert 'id="add-record"' in form


def test_adding_the_record_puts_it_below_each_part_and_saves_nothing_until_the_team_does(world):
    plan = _save(world, world.social_worker, next_steps=STEPS)
    item = _signed_off(world)
    held = timezone.localtime(item.discussion.started_at).strftime("%-d %B %Y")
    heading = f"From the group case discussion on {held}:"
    probation = world.user(Role.PROBATION_OFFICER)
    client = _client(probation)
    before, watch = write_fingerprint(), AuditWatch()
    response = client.get(_url(world, "plan_edit"), {"add": "discussion"})
    form = _form(response)
    assert form.initial["worries"] == f"{WORRIES}\n\n{heading}\n{DISCUSSED['worries']}"
    assert form.initial["strengths"] == f"{heading}\n{DISCUSSED['working_well']}"
    assert form.initial["next_steps"] == (
        f"{STEPS}\n\n{heading}\nDecision: {DISCUSSED['decision']}\n{DISCUSSED['needs']}\n"
        f"- Book the parenting course ({world.social_worker.get_full_name()}, by 15 January 2027)")
    assert form.initial["contingency"] == "" and form.initial["based_on"] == plan.version
    html = response.content.decode()
    assert 'id="record-added"' in html and "Nothing is saved until you do." in html
    assert ("has been added to: What we are worried about, What is working well, "
            "What needs to happen.") in html
    # Nothing saved; the record's text was shown, so its note was read, and recorded so.
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert watch.actions() == [AuditAction.PLAN_VIEWED, AuditAction.NOTE_VIEWED]
    read = watch.one(AuditAction.NOTE_VIEWED)
    assert_audit(read, action=AuditAction.NOTE_VIEWED, actor=probation, case_id=world.case.pk,
                 object_type="note", object_id=item.filed_note_id)
    assert read.reason == "plan form"

    # Saved as shown, through the plan's one write path.
    posted = {**{name: str(value) for name, value in form.initial.items()},
              "review_day": "", "review_month": "", "review_year": ""}
    assert client.post(_url(world, "plan_edit"), posted).status_code == 302
    plan.refresh_from_db()
    assert plan.version == 2 and plan.updated_by == probation
    assert plan.worries.endswith(DISCUSSED["worries"]) and plan.strengths.startswith(heading)
    # Added once: asking again adds nothing, says the plan already holds it, and shows
    # none of the record's text beyond the plan's own (so records no read of it).
    watch = AuditWatch()
    response = client.get(_url(world, "plan_edit"), {"add": "discussion"})
    assert _form(response).initial["worries"] == plan.worries
    assert 'id="record-already-added"' in response.content.decode()
    assert watch.actions() == [AuditAction.PLAN_VIEWED]


def test_a_part_whose_added_text_was_changed_is_not_given_the_record_again(world):
    _save(world, world.social_worker)
    _signed_off(world)
    client = _client(world.social_worker)
    added = _form(client.get(_url(world, "plan_edit"), {"add": "discussion"})).initial
    edited = {**added, "worries": added["worries"].replace("nursery", "school"),
              "strengths": "", "review_day": "", "review_month": "", "review_year": ""}
    assert client.post(_url(world, "plan_edit"), edited).status_code == 302
    watch = AuditWatch()
    again = _form(client.get(_url(world, "plan_edit"), {"add": "discussion"})).initial
    # The changed part keeps the team's words; the emptied part gets the record back.
    assert again["worries"] == edited["worries"] and again["worries"].count("From the group") == 1
    assert again["strengths"].endswith(DISCUSSED["working_well"])
    assert AuditAction.NOTE_VIEWED in watch.actions()


def test_addenda_to_the_filed_record_are_pointed_out_to_read_before_saving(world):
    from casenotes.actions import do_add_addendum

    _save(world, world.social_worker)
    item = _signed_off(world)
    do_add_addendum(acting_user=world.team_manager, note=item.filed_note,
                    body="Correction: the bruises were seen at school, not nursery.")
    client = _client(world.social_worker)
    note_url = reverse("casenotes:note_detail", args=[world.case.pk, item.filed_note_id])
    for query in ({}, {"add": "discussion"}):
        html = client.get(_url(world, "plan_edit"), query).content.decode()
        assert 'id="record-addenda"' in html and "has 1 addendum added since it was filed" in html
        assert f'href="{note_url}" target="_blank"' in html


def test_adding_the_record_while_typing_keeps_what_was_typed(world):
    _save(world, world.social_worker)
    _signed_off(world)
    client = _client(world.social_worker)
    before, watch = write_fingerprint(), AuditWatch()
    typed = "Typed just now.\r\nSecond line."
    response = client.post(_url(world, "plan_edit"), _plan_post(
        based_on=1, add="discussion", contingency=typed, review_day="31", review_month="2",
        review_year="2027"))
    form = _form(response)
    assert form.initial["contingency"] == typed  # a part the record has nothing for
    assert form.initial["worries"].startswith(f"{WORRIES}\n\nFrom the group case discussion on ")
    assert form.initial["next_steps"].startswith(f"{STEPS}\n\n")
    # Not a save: the date is not checked yet, and kept as typed with the version seen.
    assert (form.initial["review_day"], form.initial["based_on"]) == ("31", "1")
    assert not form.is_bound and 'id="record-added"' in response.content.decode()
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert watch.actions() == [AuditAction.PLAN_VIEWED, AuditAction.NOTE_VIEWED]


def test_the_form_shows_no_text_of_the_record_until_asked_and_records_no_read_of_it(world):
    _signed_off(world)
    client = _client(world.social_worker)
    watch = AuditWatch()
    response = client.get(_url(world, "plan_edit"))
    html = response.content.decode()
    assert 'id="discussion-record"' in html and 'id="add-record"' in html
    assert not any(text in html for text in DISCUSSED.values())
    assert watch.actions() == [AuditAction.PLAN_VIEWED]
    # Before the plan's first save, the case and plan pages offer to write it from the record.
    page = client.get(_url(world)).content.decode()
    assert "Write the plan from its record" in page
    assert not any(text in page for text in DISCUSSED.values())


def test_with_no_record_filed_there_is_nothing_to_add(world):
    _save(world, world.social_worker)
    client = _client(world.social_worker)
    html = client.get(_url(world)).content.decode()
    assert 'id="plan-discussed"' not in html
    form_page = client.get(_url(world, "plan_edit")).content.decode()
    assert 'id="add-record"' not in form_page and 'id="discussion-record"' not in form_page
    response = client.get(_url(world, "plan_edit"), {"add": "discussion"})
    assert _form(response).initial["worries"] == WORRIES
    assert 'id="no-record"' in response.content.decode()


def test_another_case_never_offers_this_case_record(world):
    _signed_off(world)
    locality = world.locality_users[Role.SOCIAL_WORKER]
    client = _client(locality)
    other = reverse("casenotes:plan_edit", args=[world.other_case.pk])
    watch = AuditWatch()
    response = client.get(other, {"add": "discussion"})
    html = response.content.decode()
    assert 'id="no-record"' in html and 'id="add-record"' not in html
    assert not any(text in html for text in DISCUSSED.values())
    assert AuditAction.NOTE_VIEWED not in watch.actions()


def test_a_closed_case_adds_nothing_and_a_save_refused_keeps_what_was_typed(world):
    _save(world, world.social_worker)
    _signed_off(world)
    do_close_case(acting_user=world.team_manager, case=world.case)
    client = _client(world.social_worker)
    watch = AuditWatch()
    html = client.get(_url(world, "plan_edit"), {"add": "discussion"}).content.decode()
    assert 'name="worries"' not in html and AuditAction.NOTE_VIEWED not in watch.actions()
    response = client.post(_url(world, "plan_edit"), _plan_post(
        based_on=1, add="discussion", worries="Typed before it closed."))
    assert response.status_code == 400
    html = response.content.decode()
    assert "This case is closed. Its plan cannot be changed." in html
    assert "Typed before it closed." in html


def test_a_record_the_viewer_may_not_read_in_full_is_never_offered(world):
    from casenotes.models import CaseNote

    _save(world, world.social_worker)
    item = _signed_off(world)
    # Were the filed record restricted to the manager's agency, a probation officer
    # would see its placeholder only: no pointer, no offer, none of its text.
    CaseNote.objects.filter(pk=item.filed_note_id).update(
        sensitivity=CaseNote.Sensitivity.AGENCY_RESTRICTED,
        restricted_agency=world.team_manager.memberships.get().agency)
    client = _client(world.user(Role.PROBATION_OFFICER))
    watch = AuditWatch()
    for url, query in ((_url(world), {}), (reverse("casenotes:case_detail", args=[world.case.pk]), {}),
                       (_url(world, "plan_edit"), {}), (_url(world, "plan_edit"), {"add": "discussion"})):
        html = client.get(url, query).content.decode()
        assert 'id="plan-discussed"' not in html and 'id="add-record"' not in html
        assert not any(text in html for text in DISCUSSED.values())
    assert AuditAction.NOTE_VIEWED not in watch.actions()
    # The manager, who may read it, is offered it.
    assert 'id="add-record"' in _client(world.team_manager).get(
        _url(world, "plan_edit")).content.decode()


@pytest.mark.django_db(transaction=True)  # as pages run: no transaction around the request
def test_the_record_is_not_shown_when_its_read_cannot_be_recorded(world, monkeypatch):
    from audit import actions as audit_actions

    _save(world, world.social_worker)
    _signed_off(world)
    write = audit_actions._write

    def no_note_reads(events):
        if any(e["action"] == AuditAction.NOTE_VIEWED for e in events):
            raise DatabaseError("the audit table cannot be written")
        return write(events)

    monkeypatch.setattr(audit_actions, "_write", no_note_reads)
    client = Client(raise_request_exception=False)
    client.force_login(world.social_worker)
    response = client.get(_url(world, "plan_edit"), {"add": "discussion"})
    assert response.status_code == 500
    assert not any(text in response.content.decode() for text in DISCUSSED.values())
    # Without the record, the form is shown as ever.
    assert client.get(_url(world, "plan_edit")).status_code == 200
