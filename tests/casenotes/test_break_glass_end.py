"""Ending an emergency access before it runs out: by the IG officer reviewing it, or by
the case's team manager from the case's access list. The access ends at once (its
permission rows go, each recorded), the ending is audited, kept in the grant's history,
and the person's open pages are asked to re-check (and so close); refusals change
nothing."""

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, Outcome
from casenotes.actions import do_end_break_glass, do_open_break_glass, do_review_break_glass
from casenotes.models import CaseGrant, CaseUserObjectPermission
from casenotes.permissions import NotFound, policy
from teams.models import Role
from tests.helpers import AuditWatch, assert_history


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def outsider(world):
    """A locality practitioner: not on `world.case`."""
    return world.locality_users[Role.SOCIAL_WORKER]


@pytest.fixture
def grant(world, outsider):
    return do_open_break_glass(acting_user=outsider, case=world.case,
                               reason_code=CaseGrant.Reason.IMMEDIATE_RISK)


def _rows(grant) -> int:
    return CaseUserObjectPermission.objects.filter(user=grant.user, content_object=grant.case).count()


def _assert_ended(world, grant, outsider, by, watch):
    grant.refresh_from_db()
    assert grant.ended_at is not None and grant.ended_by == by
    assert not grant.is_live()
    assert policy.case_access(outsider, world.case) is None
    assert _rows(grant) == 0
    ended = watch.one(AuditAction.BREAK_GLASS_ENDED)
    assert (ended.actor_id, ended.object_type, ended.object_id, ended.case_id) == (
        by.pk, "grant", str(grant.pk), world.case.pk)
    assert AuditAction.PERMISSION_REVOKED in watch.actions()
    assert_history(grant, user=by, history_type="~")


def test_the_ig_officer_ends_an_emergency_access_while_reviewing_it(world, grant, outsider):
    ig = world.user(Role.IG_OFFICER)
    client = _client(ig)
    url = reverse("audit:break_glass_review", args=[grant.pk])
    page = client.get(url).content.decode()
    assert "End this emergency access now" in page
    assert _rows(grant) > 0 and policy.case_access(outsider, world.case) is not None
    watch = AuditWatch()
    response = client.post(url, {"review": "follow_up", "note": "No duty call logged.",
                                 "end_now": "on"})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Review recorded. The emergency access has ended."]
    _assert_ended(world, grant, outsider, ig, watch)
    assert grant.review == CaseGrant.Review.FOLLOW_UP
    assert watch.one(AuditAction.BREAK_GLASS_ENDED).reason == "by IG review"
    # Once ended, the review page says so and no longer offers to end it.
    page = client.get(url).content.decode()
    assert "End this emergency access now" not in page
    assert "ended early" in page and f"by {ig.get_full_name()}" in page


def test_a_review_without_ending_leaves_the_access_running(world, grant, outsider):
    do_review_break_glass(acting_user=world.user(Role.IG_OFFICER), grant=grant,
                          review=CaseGrant.Review.APPROPRIATE)
    grant.refresh_from_db()
    assert grant.is_live() and policy.case_access(outsider, world.case) is not None


def test_ending_an_access_that_has_already_ended_is_refused_and_changes_nothing(world, grant):
    manager, ig = world.team_manager, world.user(Role.IG_OFFICER)
    do_end_break_glass(acting_user=manager, grant=grant)
    grant.refresh_from_db()
    history, watch = grant.history.count(), AuditWatch()
    with pytest.raises(ValidationError) as refused:
        do_end_break_glass(acting_user=manager, grant=grant)
    assert "This emergency access has already ended." in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        do_review_break_glass(acting_user=ig, grant=grant, review=CaseGrant.Review.APPROPRIATE,
                              end_now=True)
    assert refused.value.message_dict == {"end_now": ["This emergency access has already ended."]}
    grant.refresh_from_db()
    assert grant.history.count() == history and grant.review == CaseGrant.Review.PENDING
    assert watch.actions() == []


def test_the_case_manager_ends_an_emergency_access_from_the_access_list(world, grant, outsider):
    manager = world.team_manager
    client = _client(manager)
    access_url = reverse("casenotes:case_access", args=[world.case.pk])
    end_url = reverse("casenotes:break_glass_end", args=[world.case.pk, grant.pk])
    assert f'action="{end_url}"' in client.get(access_url).content.decode()
    watch = AuditWatch()
    response = client.post(end_url)
    assert response.status_code == 302 and response.url == access_url
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"{outsider.get_full_name()}'s emergency access ended now."]
    _assert_ended(world, grant, outsider, manager, watch)
    assert watch.one(AuditAction.BREAK_GLASS_ENDED).reason == "by case manager"
    assert f'id="access-emergency-{grant.pk}"' not in client.get(access_url).content.decode()


@pytest.mark.parametrize("role", [Role.SOCIAL_WORKER, Role.PROBATION_OFFICER, Role.IG_OFFICER])
def test_only_the_case_manager_ends_it_from_the_case_and_others_change_nothing(
        world, grant, outsider, role):
    user = world.user(role)
    client = _client(user)
    rows = _rows(grant)
    watch = AuditWatch()
    end_url = reverse("casenotes:break_glass_end", args=[world.case.pk, grant.pk])
    assert client.post(end_url).status_code == 404
    assert client.get(end_url).status_code in (404, 405)
    with pytest.raises(NotFound):
        do_end_break_glass(acting_user=user, grant=grant)
    grant.refresh_from_db()
    assert grant.is_live() and _rows(grant) == rows
    assert AuditAction.BREAK_GLASS_ENDED not in watch.actions()
    assert Outcome.DENIED in {e.outcome for e in watch.new()}


def test_a_keyworker_grant_is_not_ended_as_emergency_access(world, outsider):
    from casenotes.actions import do_add_keyworker

    keyworker = do_add_keyworker(acting_user=world.team_manager, case=world.case, user=outsider)
    url = reverse("casenotes:break_glass_end", args=[world.case.pk, keyworker.pk])
    assert _client(world.team_manager).post(url).status_code == 404
    keyworker.refresh_from_db()
    assert keyworker.is_live()
