"""The discussion pages: scheduling, the room for permitted and restricted participants,
saving and conflicts over a plain form, bad input re-shown with what was typed, sign-off,
My actions, and the team and case pages that lead to them."""

import datetime
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from casenotes.actions import do_add_keyworker, do_decide_transfer, do_request_transfer
from discussions import actions
from discussions.models import AgreedAction, Discussion, KeptText, Section
from teams.models import Role
from tests.discussions.conftest import schedule
from tests.helpers import AuditWatch


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def room_url(discussion) -> str:
    return reverse("discussions:room", args=[discussion.pk])


def started(world, **kw) -> Discussion:
    return actions.do_start_discussion(acting_user=world.team_manager, discussion=schedule(world, **kw))


def decision(discussion, position=1) -> Section:
    return Section.objects.get(item__discussion=discussion, item__position=position, kind="decision")


def test_a_manager_schedules_a_discussion_from_the_team_page(world):
    manager = client_for(world.team_manager)
    team_page = manager.get(reverse("teams:team_detail", args=[world.fs_team.pk])).content.decode()
    schedule_url = reverse("discussions:schedule", args=[world.fs_team.pk])
    assert schedule_url in team_page
    form = manager.get(schedule_url)
    assert form.status_code == 200 and world.case.reference in form.content.decode()
    when = timezone.localdate() + datetime.timedelta(days=2)
    response = manager.post(schedule_url, {
        "title": "Tuesday group supervision", "date": when.strftime("%d/%m/%Y"), "time": "10:30",
        "cases": [world.case.pk], "invitees": [world.social_worker.pk]})
    discussion = Discussion.objects.get()
    assert response.status_code == 302 and response.url == room_url(discussion)
    assert timezone.localtime(discussion.scheduled_for).strftime("%d/%m/%Y %H:%M") == \
        f"{when:%d/%m/%Y} 10:30"
    assert discussion.title == "Tuesday group supervision"
    listed = client_for(world.social_worker).get(reverse("teams:team_detail", args=[world.fs_team.pk]))
    assert "Tuesday group supervision" in listed.content.decode()
    assert schedule_url not in listed.content.decode()  # only managers schedule


def test_scheduling_with_bad_input_shows_every_problem_and_keeps_what_was_typed(world):
    manager = client_for(world.team_manager)
    response = manager.post(reverse("discussions:schedule", args=[world.fs_team.pk]), {
        "title": "Kept title", "date": "31/02/2026", "time": "25:99", "cases": []})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Enter a real date" in page and "24-hour format" in page
    assert 'value="Kept title"' in page
    assert not Discussion.objects.exists()
    response = manager.post(reverse("discussions:schedule", args=[world.fs_team.pk]), {
        "date": timezone.localdate().strftime("%d/%m/%Y"), "time": "23:59", "cases": []})
    assert response.status_code == 400 and "Choose at least one case" in response.content.decode()
    assert client_for(world.social_worker).get(
        reverse("discussions:schedule", args=[world.fs_team.pk])).status_code == 404


def test_the_room_shows_a_permitted_participant_the_case_and_record_and_is_not_cached(world):
    discussion = started(world)
    response = client_for(world.user(Role.PROBATION_OFFICER)).get(room_url(discussion))
    page = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "Harper family (FS-2025-0417)" in page and "Ellie Harper" in page
    assert f'href="{reverse("casenotes:chronology", args=[world.case.pk])}"' in page
    for label in ("What are we worried about?", "What is working well?", "What needs to happen?",
                  "Decision"):
        assert label in page
    assert "Sign off and file the record" not in page  # the manager's control only
    assert "Sign off and file the record" in client_for(world.team_manager).get(
        room_url(discussion)).content.decode()


def test_a_participant_not_on_a_case_sees_only_its_reference(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = started(world, cases=[world.case, world.other_case])
    actions.do_save_section(acting_user=world.team_manager, section=decision(discussion, 2),
                            text="Close to early help at review.", version=1)
    page = client_for(world.social_worker).get(room_url(discussion)).content.decode()
    assert "EH-2025-0102" in page
    assert "Osei" not in page and "Kwame" not in page and "Close to early help" not in page
    assert "only its reference is shown" in page
    assert reverse("casenotes:chronology", args=[world.other_case.pk]) not in page
    assert "Close to early help" in client_for(world.team_manager).get(room_url(discussion)).content.decode()


def test_another_teams_member_cannot_open_the_room(world):
    discussion = started(world)
    for outsider in (world.locality_users[Role.SOCIAL_WORKER], world.user(Role.IG_OFFICER)):
        assert client_for(outsider).get(room_url(discussion)).status_code == 404


def test_a_section_saved_by_form_and_a_clash_kept_beside_it(world):
    discussion = started(world)
    target = Section.objects.get(item__discussion=discussion, kind="worries")
    url = reverse("discussions:section_save", args=[discussion.pk, target.pk])
    sw = client_for(world.social_worker)
    response = sw.post(url, {"text": "Rent arrears.", "version": 1})
    assert response.status_code == 302 and response.url.endswith(f"#section-{target.pk}")
    target.refresh_from_db()
    assert target.text == "Rent arrears." and target.version == 2
    # Another participant saves from the page they opened before that save.
    response = client_for(world.user(Role.PROBATION_OFFICER)).post(
        url, {"text": "Dad back in the home.", "version": 1}, follow=True)
    page = response.content.decode()
    assert "Your text is kept beside the section" in page
    assert "Kept text from" in page and "Dad back in the home." in page
    target.refresh_from_db()
    assert target.text == "Rent arrears." and KeptText.objects.get().text == "Dad back in the home."


def test_an_overlong_section_is_refused_with_the_text_kept_in_the_form(world):
    discussion = started(world)
    target = decision(discussion)
    typed = "Long decision. " * 300
    response = client_for(world.social_worker).post(
        reverse("discussions:section_save", args=[discussion.pk, target.pk]),
        {"text": typed, "version": 1})
    page = response.content.decode()
    assert response.status_code == 400 and "4,000 characters or fewer" in page
    assert typed.strip() in page
    target.refresh_from_db()
    assert target.version == 1 and target.text == ""


@pytest.mark.parametrize("version", ["", "abc", "0", str(2**31), "99999999999999999999999"])
def test_a_section_save_of_a_version_no_page_showed_asks_for_a_reload_and_keeps_nothing(
        world, version):
    discussion = started(world)
    target = decision(discussion)
    response = client_for(world.social_worker).post(
        reverse("discussions:section_save", args=[discussion.pk, target.pk]),
        {"text": "Stay on the plan.", "version": version})
    page = response.content.decode()
    assert response.status_code == 400 and "Reload the page and try again." in page
    assert "Stay on the plan." in page
    target.refresh_from_db()
    assert (target.version, target.text, target.kept_texts.count()) == (1, "", 0)


def test_an_action_with_bad_input_is_refused_with_what_was_typed(world):
    discussion = started(world)
    item = discussion.items.get()
    url = reverse("discussions:action_add", args=[discussion.pk, item.pk])
    past = (timezone.localdate() - datetime.timedelta(days=3)).strftime("%d/%m/%Y")
    response = client_for(world.team_manager).post(url, {
        f"item{item.pk}-description": "Book a family group conference",
        f"item{item.pk}-owner": "", f"item{item.pk}-due_on": past})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Choose who will do this." in page and "today or in the future" in page
    assert 'value="Book a family group conference"' in page and f'value="{past}"' in page
    assert not AgreedAction.objects.exists()
    response = client_for(world.team_manager).post(url, {
        f"item{item.pk}-description": "Book a family group conference",
        f"item{item.pk}-owner": world.locality_users[Role.SOCIAL_WORKER].pk,
        f"item{item.pk}-due_on": timezone.localdate().strftime("%d/%m/%Y")})
    assert response.status_code == 400 and "Choose a team member" in response.content.decode()
    response = client_for(world.team_manager).post(url, {
        f"item{item.pk}-description": "Book a family group conference",
        f"item{item.pk}-owner": world.social_worker.pk,
        f"item{item.pk}-due_on": timezone.localdate().strftime("%d/%m/%Y")})
    assert response.status_code == 302 and AgreedAction.objects.get().owner == world.social_worker


def test_sign_off_refused_shows_why_and_signed_off_record_is_locked(world):
    discussion = started(world)
    manager = client_for(world.team_manager)
    refused = manager.post(reverse("discussions:sign_off", args=[discussion.pk]))
    assert refused.status_code == 400
    assert "record the decision before signing off" in refused.content.decode()
    actions.do_save_section(acting_user=world.team_manager, section=decision(discussion),
                            text="Step up to a child protection conference.", version=1)
    done = manager.post(reverse("discussions:sign_off", args=[discussion.pk]), follow=True)
    page = done.content.decode()
    assert "Signed off by" in page and "<textarea" not in page  # the record, as text
    filed = page.split(f'id="section-{decision(discussion).pk}"', 1)[1].split("</div>", 1)[0]
    assert "Step up to a child protection conference." in filed
    assert 'data-now hidden' in page and "app-discussion-item--current" not in page
    note = discussion.items.get().filed_note
    assert note is not None and f"/notes/{note.pk}/" in page
    late = client_for(world.social_worker).post(
        reverse("discussions:section_save", args=[discussion.pk, decision(discussion).pk]),
        {"text": "A late thought.", "version": 2})
    assert late.status_code == 400 and "has been signed off" in late.content.decode()
    assert "A late thought." in late.content.decode()  # what was typed is still there
    case_page = client_for(world.social_worker).get(
        reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert "Step up to a child protection conference." in case_page


def test_my_actions_with_nothing_to_do_says_so_and_records_the_look(world):
    """Most people have no agreed action most of the time: the page answers, says there
    is nothing to do, and the look is still an entry in the access log."""
    watch = AuditWatch()
    page = client_for(world.social_worker).get(reverse("discussions:my_actions"))
    assert page.status_code == 200
    assert "Nothing to do." in page.content.decode()
    entry = watch.one(AuditAction.ACTIONS_VIEWED)
    assert (entry.actor_id, entry.case_id) == (world.social_worker.pk, None)


def test_my_actions_lists_the_owners_tasks_with_overdue_ones_flagged_and_marks_them_done(world):
    discussion = started(world)
    item = discussion.items.get()
    actions.do_save_section(acting_user=world.team_manager, section=decision(discussion),
                            text="Continue the plan.", version=1)
    soon = actions.do_add_action(acting_user=world.team_manager, item=item, owner=world.social_worker,
                                 description="Visit the school", due_on=timezone.localdate())
    late = actions.do_add_action(acting_user=world.team_manager, item=item, owner=world.social_worker,
                                 description="Ring the GP", due_on=timezone.localdate())
    actions.do_add_action(acting_user=world.team_manager, item=item,
                          owner=world.user(Role.PROBATION_OFFICER),
                          description="Share the risk assessment", due_on=timezone.localdate())
    actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    AgreedAction.objects.filter(pk=late.pk).update(due_on=timezone.localdate() - datetime.timedelta(days=1))
    sw = client_for(world.social_worker)
    page = sw.get(reverse("discussions:my_actions")).content.decode()
    assert "Visit the school" in page and "Ring the GP" in page
    assert "Share the risk assessment" not in page  # someone else's
    assert "1 overdue" in page and "app-task--overdue" in page
    assert '1<span class="govuk-visually-hidden"> overdue</span>' in page  # the header count
    response = sw.post(reverse("discussions:action_complete", args=[soon.pk]),
                       {"outcome": "Met the head teacher."})
    assert response.status_code == 302
    soon.refresh_from_db()
    assert soon.state == AgreedAction.State.DONE
    case_page = sw.get(reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert "Actions from group case discussions" in case_page and "Met the head teacher." in case_page
    bad = sw.post(reverse("discussions:action_complete", args=[late.pk]), {"outcome": "x" * 501})
    assert bad.status_code == 400 and "500 characters or fewer" in bad.content.decode()
    assert client_for(world.user(Role.PROBATION_OFFICER)).post(
        reverse("discussions:action_complete", args=[late.pk])).status_code == 404


def test_the_manager_moves_the_meeting_through_the_agenda(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = schedule(world, cases=[world.case, world.other_case])
    manager = client_for(world.team_manager)
    assert manager.post(reverse("discussions:start", args=[discussion.pk])).status_code == 302
    second = discussion.items.get(position=2)
    response = manager.post(reverse("discussions:move", args=[discussion.pk]), {"item": second.pk})
    assert response.status_code == 302
    discussion.refresh_from_db()
    assert discussion.current_item == second
    assert client_for(world.social_worker).post(
        reverse("discussions:move", args=[discussion.pk]),
        {"item": discussion.items.get(position=1).pk}).status_code == 404


@pytest.mark.parametrize("operation", ["up", "remove"])
def test_the_agenda_is_changed_from_the_room_before_the_start(world, operation):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = schedule(world, cases=[world.case, world.other_case])
    second = discussion.items.get(position=2)
    response = client_for(world.team_manager).post(
        reverse("discussions:agenda", args=[discussion.pk]), {"operation": operation, "item": second.pk})
    assert response.status_code == 302
    cases = list(discussion.items.order_by("position").values_list("case_id", flat=True))
    assert cases == ([world.other_case.pk, world.case.pk] if operation == "up" else [world.case.pk])


def test_a_move_sent_twice_or_after_the_agenda_changed_moves_nothing_and_says_why(world):
    """Moves are relative ("up"): the form says where the case was on the page, so a
    move sent twice (or two people at once) does not move it two places."""
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = schedule(world, cases=[world.case, world.other_case])
    second = discussion.items.get(position=2)
    client = client_for(world.team_manager)
    url = reverse("discussions:agenda", args=[discussion.pk])
    sent = {"operation": "down", "item": discussion.items.get(position=1).pk, "position": 1}
    assert client.post(url, sent).status_code == 302
    again = client.post(url, sent)
    assert again.status_code == 400
    assert "The agenda has changed since this page was shown" in again.content.decode()
    order = list(discussion.items.order_by("position").values_list("pk", flat=True))
    assert order[0] == second.pk


def test_a_case_taken_off_the_agenda_meanwhile_is_refused_with_a_message(world):
    """Someone took the case off between the page and the action's lock: a message,
    not a server error."""
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = schedule(world, cases=[world.case, world.other_case])
    gone = discussion.items.get(position=2)
    actions.do_remove_agenda_item(acting_user=world.team_manager, item=gone)
    for change in (lambda: actions.do_remove_agenda_item(acting_user=world.team_manager, item=gone),
                   lambda: actions.do_move_agenda_item(acting_user=world.team_manager, item=gone,
                                                       up=True)):
        with pytest.raises(ValidationError, match="no longer on the agenda"):
            change()


def test_every_version_of_the_record_is_shown_with_who_and_when_for_the_cases_one_may_see(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = started(world, cases=[world.case, world.other_case])
    worries = Section.objects.get(item__discussion=discussion, item__position=1, kind="worries")
    actions.do_save_section(acting_user=world.social_worker, section=worries,
                            text="Dad's drinking.", version=1)
    actions.do_save_section(acting_user=world.user(Role.PROBATION_OFFICER), section=worries,
                            text="Dad's drinking at weekends.", version=2)
    actions.do_save_section(acting_user=world.team_manager, section=decision(discussion, 2),
                            text="Close to early help.", version=1)
    url = reverse("discussions:history", args=[discussion.pk])
    page = client_for(world.social_worker).get(url).content.decode()
    assert "<del>Dad&#x27;s drinking.</del>" in page and "Dad&#x27;s drinking at weekends." in page
    assert world.user(Role.PROBATION_OFFICER).get_full_name() in page
    assert "Close to early help" not in page and "Cases you are not working on are left out" in page
    assert "Close to early help" in client_for(world.team_manager).get(url).content.decode()
    assert client_for(world.locality_users[Role.SOCIAL_WORKER]).get(url).status_code == 404


def test_the_caseload_shows_the_teams_coming_discussions_and_one_running_now(world):
    later = schedule(world, when=timezone.now() + datetime.timedelta(days=2))
    now = schedule(world, when=timezone.now() + datetime.timedelta(minutes=5))
    gone = schedule(world, when=timezone.now() + datetime.timedelta(days=3))
    actions.do_cancel_discussion(acting_user=world.team_manager, discussion=gone)
    actions.do_start_discussion(acting_user=world.team_manager, discussion=now)
    other = actions.do_schedule_discussion(
        acting_user=world.locality_users[Role.TEAM_MANAGER], team=world.locality_team,
        scheduled_for=timezone.now() + datetime.timedelta(days=1), cases=[world.other_case],
        invitees=world.locality_members())

    page = client_for(world.user(Role.PROBATION_OFFICER)).get(reverse("casenotes:caseload"))
    assert page.status_code == 200
    html = page.content.decode()
    room = room_url(now)
    banner = html.split(f'id="running-{now.pk}"', 1)[1].split("</div>\n</div>", 1)[0]
    assert f'href="{room}"' in banner and "Join the discussion" in banner
    listed = html.split('id="coming-discussions"', 1)[1].split("</ul>", 1)[0]
    assert listed.index(room) < listed.index(room_url(later))
    started_at = timezone.localtime(Discussion.objects.get(pk=now.pk).started_at)
    assert f"started {started_at:%A %-d %B, %H:%M}" in listed
    for hidden in (gone, other):
        assert room_url(hidden) not in html

    locality = client_for(world.locality_users[Role.SOCIAL_WORKER]).get(
        reverse("casenotes:caseload")).content.decode()
    assert room_url(other) in locality
    assert room_url(now) not in locality
    assert "running-" not in locality


def test_the_caseload_shows_no_discussions_to_those_outside_teams(world):
    schedule(world)
    for role in (Role.IG_OFFICER, Role.ADMINISTRATOR):
        html = client_for(world.user(role)).get(reverse("casenotes:caseload")).content.decode()
        assert 'id="coming-discussions"' not in html and "running-" not in html


def test_cancelling_a_discussion_needs_the_managers_confirmation_and_is_then_final(world):
    discussion = schedule(world)
    client = client_for(world.team_manager)
    url = reverse("discussions:cancel", args=[discussion.pk])
    assert 'name="confirm"' in client.get(room_url(discussion)).content.decode()
    unconfirmed = client.post(url, {})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm that the discussion is cancelled for everyone." in \
        unconfirmed.content.decode()
    discussion.refresh_from_db()
    assert discussion.status == Discussion.Status.SCHEDULED
    assert not AuditEvent.objects.filter(action=AuditAction.DISCUSSION_CANCELLED).exists()
    confirmed = client.post(url, {"confirm": "on"})
    assert confirmed.status_code == 302
    discussion.refresh_from_db()
    assert discussion.status == Discussion.Status.CANCELLED
    assert AuditEvent.objects.filter(action=AuditAction.DISCUSSION_CANCELLED,
                                     object_id=str(discussion.pk)).count() == 1


def test_only_the_manager_may_cancel_even_with_the_box_ticked(world):
    discussion = schedule(world)
    response = client_for(world.social_worker).post(
        reverse("discussions:cancel", args=[discussion.pk]), {"confirm": "on"})
    assert response.status_code == 404
    discussion.refresh_from_db()
    assert discussion.status == Discussion.Status.SCHEDULED


def test_the_manager_takes_an_unreached_case_off_the_agenda_during_the_meeting(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = schedule(world, cases=[world.case, world.other_case])
    actions.do_start_discussion(acting_user=world.team_manager, discussion=discussion)
    item = discussion.items.get(case=world.other_case)
    client = client_for(world.team_manager)
    page = client.get(room_url(discussion)).content.decode()
    assert "Not reached: take off the agenda" in page
    assert "Not reached" not in client_for(world.social_worker).get(room_url(discussion)).content.decode()
    response = client.post(reverse("discussions:agenda", args=[discussion.pk]),
                           {"operation": "remove", "item": item.pk})
    assert response.status_code == 302
    assert list(discussion.items.values_list("case", flat=True)) == [world.case.pk]


def test_the_manager_adds_a_case_to_a_scheduled_agenda_from_a_list_of_their_open_cases(world):
    from casenotes.actions import do_create_case
    from casenotes.models import Case

    later = do_create_case(acting_user=world.team_manager, reference="FS-26-0321",
                           family_name="Nowak", category=Case.Category.CHILD_IN_NEED,
                           team=world.fs_team)
    discussion = schedule(world)
    client = client_for(world.team_manager)
    add_url = reverse("discussions:agenda_add", args=[discussion.pk])
    assert f'href="{add_url}"' in client.get(room_url(discussion)).content.decode()
    watch_from = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    page = client.get(add_url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Nowak family (FS-26-0321)" in html
    assert "Harper family" not in html  # already on the agenda
    [read] = AuditEvent.objects.filter(pk__gt=watch_from)
    assert (read.action, read.object_type, read.object_id) == (
        AuditAction.CASE_FORM_VIEWED, "discussion", str(discussion.pk))
    assert read.reason == f"agenda add form: 1 cases listed; cases shown [{later.pk}]"
    added = client.post(reverse("discussions:agenda", args=[discussion.pk]),
                        {"operation": "add", "case": later.pk})
    assert added.status_code == 302
    assert list(discussion.items.order_by("position").values_list("case", flat=True)) == [
        world.case.pk, later.pk]
    assert "Every open case you can see is already on the agenda." in \
        client.get(add_url).content.decode()


def test_only_the_manager_adds_to_the_agenda_and_only_before_the_start(world):
    discussion = schedule(world)
    add_url = reverse("discussions:agenda_add", args=[discussion.pk])
    assert client_for(world.social_worker).get(add_url).status_code == 404
    actions.do_start_discussion(acting_user=world.team_manager, discussion=discussion)
    page = client_for(world.team_manager).get(add_url).content.decode()
    assert "The agenda can only be changed before the discussion starts." in page
    assert 'name="case"' not in page


def test_a_past_date_is_shown_on_the_date_field_and_a_handed_over_case_is_not_offered(world):
    manager = client_for(world.team_manager)
    url = reverse("discussions:schedule", args=[world.fs_team.pk])
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    response = manager.post(url, {"date": yesterday.strftime("%d/%m/%Y"), "time": "10:00",
                                  "cases": [world.case.pk]})
    assert response.status_code == 400
    assert [str(e) for e in response.context["form"]["date"].errors] == [
        "The discussion must be today or later."]
    assert 'id="id_date-error"' in response.content.decode()  # marked on the field itself

    # The team hands the Harper case over to the locality team: read-only for a while.
    transfer = do_request_transfer(acting_user=world.team_manager, case=world.case,
                                   to_team=world.locality_team, reason="Stepping down.")
    do_decide_transfer(acting_user=world.locality_users[Role.TEAM_MANAGER], transfer=transfer,
                       accept=True, reason="Agreed at the step-down meeting.")
    page = manager.get(url)
    assert world.case.reference not in page.content.decode()
    assert [c.pk for c in page.context["form"].fields["cases"].queryset] == []



def test_an_actions_owner_is_chosen_from_the_team_by_name(world):
    page = client_for(world.team_manager).get(room_url(started(world))).content.decode()
    owner_select = page.split('name="item', 1)[1].split('-owner"', 1)[1].split("</select>", 1)[0]
    names = re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', owner_select)
    assert len(names) == len(world.fs_members()) and names == sorted(names)
