"""Prepared queries (workspace.prepared) run exactly what Django compiles for the same
values, and read back exactly what the queryset reads, on whichever database the
suite runs on."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.chain import _HEAD, GENESIS, head_hash
from audit.models import AuditEvent
from casenotes.events import _LAST_SEQ, last_seq
from casenotes.models import CaseEvent, CaseGroupObjectPermission
from casenotes.permissions import _TEAM_ROWS, _USER_ROWS
from teams.models import Membership, Role
from teams.selectors import _CASE_MEMBERSHIPS, active_case_memberships
from workspace.prepared import LIST_LIMIT, DateTime, Int, Ints, Prepared

ids = st.integers(min_value=1, max_value=2**31 - 1)
id_lists = st.lists(ids, max_size=LIST_LIMIT + 3)
aware = st.datetimes(min_value=datetime.datetime(1970, 1, 2), max_value=datetime.datetime(2200, 1, 1),
                     timezones=st.just(datetime.UTC))
dates = st.dates(min_value=datetime.date(1970, 1, 2), max_value=datetime.date(2200, 1, 1))

#: The prepared queries and the values each takes.
CASES = {
    "team rows": (_TEAM_ROWS, st.fixed_dictionaries({"now": aware, "cases": id_lists, "groups": id_lists})),
    "user rows": (_USER_ROWS, st.fixed_dictionaries({"now": aware, "cases": id_lists, "user_id": ids})),
    "case memberships": (_CASE_MEMBERSHIPS, st.fixed_dictionaries({"user_id": ids, "on": dates})),
    "a case's last event number": (_LAST_SEQ, st.fixed_dictionaries({"case_id": ids})),
    "the audit trail's head": (_HEAD, st.fixed_dictionaries({})),
}


def _django_compiles(prepared: Prepared, values: dict):
    from django.core.exceptions import EmptyResultSet

    try:
        sql, params = prepared.build(**values).query.get_compiler(using="default").as_sql()
    except EmptyResultSet:
        return None
    return sql, [(type(p), p) for p in params]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_prepared_query_runs_what_django_compiles_for_the_same_values(name, data):
    prepared, values = CASES[name]
    values = data.draw(values)
    ours = prepared.sql_with_params(**values)
    if ours is not None:
        ours = ours[0], [(type(p), p) for p in ours[1]]
    assert ours == _django_compiles(prepared, values)


def test_a_prepared_query_reads_what_its_queryset_reads(world):
    now = timezone.now()
    case_ids = [world.case.pk, world.other_case.pk]
    group_ids = [world.fs_team.group_id, world.locality_team.group_id]
    expected = list(_TEAM_ROWS.build(now=now, cases=case_ids, groups=group_ids))
    assert expected, "the world's teams hold rows on their cases"
    assert _TEAM_ROWS.rows(now=now, cases=case_ids, groups=group_ids) == expected
    # The same query on a second call (compiled once) reads the same.
    assert _TEAM_ROWS.rows(now=now, cases=case_ids, groups=group_ids) == expected
    # Another shape (one case) reads what its own queryset reads.
    assert _TEAM_ROWS.rows(now=now, cases=case_ids[:1], groups=group_ids) == list(
        _TEAM_ROWS.build(now=now, cases=case_ids[:1], groups=group_ids))


def test_an_expiry_is_compared_with_the_time_given_each_call(world):
    """The rows' expiry is read back as Django reads it (an aware datetime) and compared
    with each call's own time."""
    row = CaseGroupObjectPermission.objects.filter(content_object=world.case).first()
    ends = timezone.now() + datetime.timedelta(hours=1)
    CaseGroupObjectPermission.objects.filter(pk=row.pk).update(expires_at=ends)
    args = {"cases": [world.case.pk], "groups": [row.group_id]}
    before = _TEAM_ROWS.rows(now=ends - datetime.timedelta(minutes=1), **args)
    after = _TEAM_ROWS.rows(now=ends + datetime.timedelta(minutes=1), **args)
    assert (world.case.pk, row.group_id, row.permission.codename, ends) in before
    assert all(expiry != ends for *_, expiry in after)


def test_a_list_django_finds_empty_is_answered_without_a_query(world):
    with CaptureQueriesContext(connection) as queries:
        assert _TEAM_ROWS.rows(now=timezone.now(), cases=[world.case.pk], groups=[]) == []
    assert len(queries) == 0


def test_a_list_longer_than_the_limit_runs_the_queryset_itself(world):
    now = timezone.now()
    case_ids = [world.case.pk] + list(range(10**6, 10**6 + LIST_LIMIT))
    groups = [world.fs_team.group_id]
    assert _TEAM_ROWS.rows(now=now, cases=case_ids, groups=groups) == list(
        _TEAM_ROWS.build(now=now, cases=case_ids, groups=groups))
    assert _TEAM_ROWS.rows(now=now, cases=case_ids, groups=groups)
    # Nothing was compiled and kept for that length.
    kept = _TEAM_ROWS._local.__dict__.get("default", {})
    assert (len(case_ids), len(groups)) not in kept


def test_a_repeated_id_is_sent_once_as_django_sends_it(world):
    now = timezone.now()
    groups = [world.fs_team.group_id]
    twice = [world.case.pk, world.case.pk]
    assert _TEAM_ROWS.rows(now=now, cases=twice, groups=groups) == list(
        _TEAM_ROWS.build(now=now, cases=twice, groups=groups))
    assert _TEAM_ROWS.sql_with_params(now=now, cases=twice, groups=groups) == \
        _TEAM_ROWS.sql_with_params(now=now, cases=twice[:1], groups=groups)


def test_a_value_the_query_does_not_use_is_refused_when_it_is_prepared(db):
    ignores_its_user = Prepared(
        lambda now, user_id: CaseGroupObjectPermission.objects.filter(expires_at__gt=now)
        .values_list("pk"), now=DateTime, user_id=Int)
    with pytest.raises(ValueError, match="user_id"):
        ignores_its_user.rows(now=timezone.now(), user_id=1)
    ignores_a_list = Prepared(
        lambda cases: CaseGroupObjectPermission.objects.values_list("pk"), cases=Ints)
    with pytest.raises(ValueError, match="cases"):
        ignores_a_list.rows(cases=[1])


def test_case_memberships_come_with_their_team_and_agency_as_select_related_reads_them(world):
    user = world.social_worker
    expected = list(Membership.objects.case_working(timezone.localdate()).filter(user=user)
                    .select_related("agency", "team").order_by("start_date", "id"))
    with CaptureQueriesContext(connection) as queries:
        found = active_case_memberships(user)
        described = [(m.pk, m.role, m.start_date, m.end_date, m.team.name, m.team.group_id,
                      m.agency.name, m.agency.kind) for m in found]
    assert len(queries) == 1
    assert described == [(m.pk, m.role, m.start_date, m.end_date, m.team.name, m.team.group_id,
                          m.agency.name, m.agency.kind) for m in expected]
    assert found and all(not m._state.adding and m._state.db == "default" for m in found)
    # Still a model: saved back through the ORM as any other read would be.
    assert found[0] == expected[0]


def test_organisation_wide_roles_have_no_case_memberships(world):
    ig_officer = world.user(Role.IG_OFFICER)
    assert Membership.objects.filter(user=ig_officer).exists()
    assert active_case_memberships(ig_officer) == []


def test_a_cases_last_event_number_and_the_audit_head_are_the_newest(world):
    before = last_seq(world.case.pk)
    assert before == max(CaseEvent.objects.filter(case=world.case).values_list("seq", flat=True))
    world.standard_note(world.social_worker)
    assert last_seq(world.case.pk) == before + 1
    assert last_seq(10**9) == 0
    assert head_hash() == AuditEvent.objects.order_by("-id").values_list("entry_hash", flat=True)[0]
    assert head_hash() != GENESIS
