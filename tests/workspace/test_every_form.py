"""Every form a signed-in person is shown takes awkward input with a clear answer: a page,
a redirect, "not found" for an id that is not one, never a server error; and a refusal
says why in an error summary, whose links each lead to something on the page (not to a
hidden field), and changes nothing.

With the demo busier than it is seeded (a group case discussion running, an emergency
access to review, a transfer waiting), a social worker, a team manager, an IG officer
and the receiving team's manager each walk every page they can reach by links
(tests/workspace/test_every_link.py) and collect the forms that post, each kind once.

For each form the test first finds what a person could send that is accepted: the form
as the page filled it in, sent as a browser sends it (unticked boxes left out, ticked
ones all sent), and if that is refused, the same with each empty field filled with
something ordinary (words, a date before or after today, a time, the first choice of a
list). Then, from that accepted form, one field at a time holds an awkward value; then
every field holds the same one; then each hidden field (a version, an id) is altered as
a crafted request would. So awkward values reach the actions behind the forms, not only
the forms' own checks. Each request runs in a savepoint rolled back after it, so each
starts from the same record (no version gone stale, no case closed by an earlier one).

Not sent: signing out (it would end the walk) and buttons with nothing to type, choose
or alter (such as "Start the discussion": no input of theirs can be awkward). Not seen: a
refusal answered as a redirect with a message is taken for an answer like any other (the
record is compared only for refusals answered 400, 404 or 409), and a change to a row of
a model without history that adds no row.
"""

import datetime
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import TestCase
from django.urls import resolve
from django.utils import timezone

from tests.helpers import dead_summary_links
from tests.workspace.test_every_link import _walk

NOT_SENT = ("/accounts/logout/",)

#: One field at a time (the rest as accepted).
AWKWARD_ONE = ["x" * 5000, "nul\x00byte", "99999999999999999999999", "-1", "31/12/9999",
               "line\r\nbreak"]
#: One hidden field at a time (a version, an id: a crafted request's).
AWKWARD_HIDDEN = ["99999999999999999999999", "-1", "x", ""]
#: Every field at once.
AWKWARD_ALL = ["", "   ", "x" * 5000, "nul\x00byte", "Zoë 😀", "-99999999999999999999999"]

#: Typed or chosen by the person (a hidden field is the page's own).
TYPED = {"text", "email", "number", "search", "tel", "url", "date", "password", "textarea",
         "select", "radio", "checkbox"}

#: The kinds of form whose awkward values must reach the action behind them: for each,
#: an ordinary filling is accepted (so the walk is not only testing the forms' checks).
MUST_BE_ACCEPTED = {
    "casenotes:note_create", "casenotes:note_edit", "casenotes:addendum_create",
    "casenotes:person_add", "casenotes:person_edit", "casenotes:plan_edit",
    "casenotes:keyworker_add", "casenotes:transfer_request", "casenotes:transfer_decide",
    "casenotes:case_create", "casenotes:case_manage", "discussions:schedule",
    "discussions:action_add", "discussions:section_save", "audit:break_glass_review",
}


@dataclass
class Form:
    page: str
    action: str
    values: dict[str, list[str]] = field(default_factory=dict)  # as a browser sends them
    kinds: dict[str, str] = field(default_factory=dict)  # name -> input type
    options: dict[str, list[str]] = field(default_factory=dict)  # select or radio choices
    button: tuple[str, str] | None = None  # the first submit button's name and value
    first_button_seen: bool = False

    @property
    def view(self) -> str:
        return resolve(self.action).view_name

    @property
    def typed(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind in TYPED]

    @property
    def hidden(self) -> list[str]:
        return [name for name, kind in self.kinds.items()
                if kind == "hidden" and name != "csrfmiddlewaretoken"]

    def data(self, values: dict[str, list[str]]) -> dict:
        sent = {name: value for name, value in values.items() if value}
        if self.button:
            sent[self.button[0]] = [self.button[1]]
        return sent


class _Forms(HTMLParser):
    """The page's POST forms: each field's kind, its choices, and what a browser would
    send for it as the page filled it in."""

    def __init__(self, page: str):
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            if (attrs.get("method") or "get").lower() == "post":
                self._form = Form(self.page, attrs.get("action") or self.page)
                self.forms.append(self._form)
            return
        form, name = self._form, attrs.get("name")
        if form is None:
            return
        if tag == "button" or (tag == "input" and attrs.get("type") == "submit"):
            if (attrs.get("type") or "submit") == "submit" and not form.first_button_seen:
                form.first_button_seen = True
                if name:
                    form.button = (name, attrs.get("value") or "")
        elif tag == "input" and name:
            kind = (attrs.get("type") or "text").lower()
            form.kinds.setdefault(name, kind)
            form.values.setdefault(name, [])
            if kind in ("radio", "checkbox"):
                form.options.setdefault(name, []).append(attrs.get("value") or "on")
                if "checked" in attrs:
                    form.values[name].append(attrs.get("value") or "on")
            else:
                form.values[name] = [attrs.get("value") or ""]
        elif tag == "textarea" and name:
            form.kinds[name] = "textarea"
            form.values[name] = [""]
            self._textarea = name
        elif tag == "select" and name:
            form.kinds[name] = "select"
            form.values[name] = []
            form.options[name] = []
            self._select, self._select_chosen = name, False
        elif tag == "option" and self._select:
            value = attrs.get("value") or ""
            form.options[self._select].append(value)
            if "selected" in attrs or not form.values[self._select]:
                if "selected" in attrs or not self._select_chosen:
                    form.values[self._select] = [value]
                self._select_chosen = self._select_chosen or "selected" in attrs

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            # Django starts a textarea with a newline the browser drops.
            value = self._form.values[self._textarea][0] + data
            self._form.values[self._textarea] = [value.removeprefix("\n")]

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def _forms(client, known: set) -> list[Form]:
    """Each kind of POST form once (by the page it posts to and what it holds: one
    person's details form stands for every person's; a kind in `known`, sent for someone
    else already, is not sent again)."""
    forms: dict[tuple[str, tuple[str, ...]], Form] = {}
    for url, body in _walk(client, keep_pages=True).pages.items():
        page = _Forms(url)
        page.feed(body)
        for form in page.forms:
            if form.action.startswith(NOT_SENT) or not (form.typed or form.hidden):
                continue
            kind = (form.view, tuple(sorted(form.kinds)))
            if kind not in known:
                forms.setdefault(kind, form)
    known.update(forms)
    return list(forms.values())


def _ordinary(form: Form, days: int, *, other_choice: bool = False) -> dict[str, list[str]]:
    """The form with each empty field filled as a person ordinarily would: words, a case
    reference, a date `days` from today (day, month, year parts, or one date field), a
    time, the first real choice of a list. With `other_choice`, each list takes its last
    choice instead (a change of what was chosen) and each box is ticked (a confirmation)."""
    day = timezone.localdate() + datetime.timedelta(days=days)
    values = {name: list(value) for name, value in form.values.items()}
    for name in form.typed:
        kind = form.kinds[name]
        real = [option for option in form.options.get(name, []) if option]
        if other_choice and kind in ("select", "radio", "checkbox") and real:
            values[name] = real[-1:]
            continue
        if values[name] and any(v.strip() for v in values[name]):
            continue
        if kind == "checkbox":
            continue
        if kind in ("select", "radio"):
            values[name] = real[:1]
        elif name == "reference":
            values[name] = ["FS-26-9001"]
        elif name.endswith("_day"):
            values[name] = [str(day.day)]
        elif name.endswith("_month"):
            values[name] = [str(day.month)]
        elif name.endswith("_year"):
            values[name] = [str(day.year)]
        elif "time" in name:
            values[name] = ["10:00"]
        elif name.split("-")[-1] in ("date", "until", "due_on"):
            values[name] = [day.strftime("%d/%m/%Y")]
        elif kind == "number" or name.endswith("_days"):
            values[name] = ["1"]
        elif kind != "password":
            values[name] = ["Ordinary words about the family's week."]
    return values


class _RolledBack(Exception):
    pass


def _record_tables() -> list[str]:
    # Presence and the caseload's last-opened marks are not the record (a page view or
    # an open socket writes them); many-to-many link tables are.
    skip = {"casevisit", "roompresence", "discussionpresence"}
    return sorted(model._meta.db_table
                  for model in apps.get_models(include_auto_created=True)
                  if model._meta.app_label in ("casenotes", "discussions", "teams", "auth",
                                               "otp_static", "otp_totp")
                  and model._meta.model_name not in skip)


def _record_now() -> tuple[int, ...]:
    """How many rows each table of the record holds, and its newest id, in one query
    (each change to a kept model adds a history row, and a link swapped for another has
    a new id, so changes show too); the audit trail and sign-in sessions aside."""
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(
            f"(SELECT COUNT(*) FROM {q(t)}), (SELECT COALESCE(MAX({q('id')}), 0) FROM {q(t)})"
            if _has_id(t) else f"(SELECT COUNT(*) FROM {q(t)})" for t in _record_tables()))
        return tuple(cursor.fetchone())


def _has_id(table: str) -> bool:
    model = next(m for m in apps.get_models(include_auto_created=True)
                 if m._meta.db_table == table)
    return model._meta.pk.column == "id"


def _post(client, form: Form, values: dict[str, list[str]]):
    """Send the form in a savepoint rolled back afterwards, with what it queues for after
    commit run and the database's deferred constraints checked before the rollback:
    (status, has an error summary, whether the record changed, the summary's links that
    lead nowhere)."""
    outcome = None
    try:
        with transaction.atomic():
            before = _record_now()
            with TestCase.captureOnCommitCallbacks(execute=True):
                response = client.post(form.action, form.data(values))
            connection.check_constraints()
            outcome = (response.status_code, b"govuk-error-summary" in response.content,
                       _record_now() != before, dead_summary_links(response.content.decode()))
            raise _RolledBack
    except _RolledBack:
        pass
    return outcome


def _accepted_base(client, form: Form) -> tuple[dict[str, list[str]] | None, bool]:
    """The first ordinary filling accepted, and whether saving it changed the record."""
    for values in (form.values, _ordinary(form, -1), _ordinary(form, 7),
                   _ordinary(form, -1, other_choice=True)):
        status, summary, changed, _ = _post(client, form, values)
        if status in (200, 302) and not summary:
            return values, changed
    return None, False


def _check(client, form: Form, values: dict, problems: list[str], refusals: dict) -> None:
    status, summary, changed, dead = _post(client, form, values)
    shown = {k: (v[0][:20] + "…" if v and len(v[0]) > 20 else v) for k, v in values.items()
             if k != "csrfmiddlewaretoken"}
    where = f"POST {form.action} {shown}"
    if status not in (200, 302, 400, 404, 409):
        problems.append(f"{where}: answered {status}")
    elif status == 400 and not summary:
        problems.append(f"{where}: refused (400) with no error summary")
    if status in (400, 404, 409) and changed:
        problems.append(f"{where}: refused ({status}), yet changed the record")
    if dead:
        problems.append(f"{where}: the error summary links to {dead}, which is not on the page")
    if status == 400 and summary:
        refusals[form.view] = refusals.get(form.view, 0) + 1


def _busy(demo) -> None:
    """The demo with more under way, so that more forms are shown: the team's group case
    discussion running, with an action agreed; an emergency access for IG to review; a
    transfer waiting for the receiving team's manager."""
    from casenotes.actions import do_open_break_glass, do_request_transfer
    from discussions.actions import do_add_action, do_start_discussion
    from discussions.models import Discussion
    from teams.models import Team

    manager = demo.user("team.manager")
    discussion = do_start_discussion(acting_user=manager, discussion=Discussion.objects.get())
    do_add_action(acting_user=manager, item=discussion.items.first(), description="Visit at home",
                  owner=demo.user("social.worker"),
                  due_on=timezone.localdate() + datetime.timedelta(days=7))
    do_open_break_glass(acting_user=demo.user("early.help"), case=demo.case(), reason_code="other",
                        reason="Police called overnight about the children.")
    do_request_transfer(acting_user=manager, case=demo.case("FS-24-0142"),
                        to_team=Team.objects.get(name__contains="Locality"),
                        reason="Risk has fallen; early help can support the family now.")


@pytest.mark.django_db
def test_every_form_shown_answers_awkward_input_clearly_and_a_refusal_changes_nothing(
        demo, settings):
    settings.NOTE_SAVES_PER_MINUTE = 0  # the walk saves far more than a person could
    _busy(demo)
    known: set = set()
    accepted: set[str] = set()
    changing: set[str] = set()  # accepted, and seen to change the record
    refusals: dict[str, int] = {}
    problems: list[str] = []
    for username in ["social.worker", "team.manager", "ig.officer", "locality.manager"]:
        client = demo.client(username)
        for form in _forms(client, known):
            base, changed = _accepted_base(client, form)
            if base is not None:
                accepted.add(form.view)
            if changed:
                changing.add(form.view)
            base = base or form.values
            for name in form.typed:
                for value in AWKWARD_ONE:
                    _check(client, form, {**base, name: [value]}, problems, refusals)
            for name in form.hidden:
                for value in AWKWARD_HIDDEN:
                    _check(client, form, {**base, name: [value]}, problems, refusals)
            for value in AWKWARD_ALL:
                _check(client, form, {**base, **{name: [value] for name in form.values}},
                       problems, refusals)
    assert not problems, "\n".join(problems)
    # Awkward values reached the actions: an ordinary filling of each of these forms was
    # accepted, and each refused at least one awkward value with its error summary.
    assert MUST_BE_ACCEPTED <= accepted, sorted(MUST_BE_ACCEPTED - accepted)
    assert MUST_BE_ACCEPTED <= set(refusals), sorted(MUST_BE_ACCEPTED - set(refusals))
    # The record's snapshot sees a write (so "a refusal changes nothing" is a real check).
    assert {"casenotes:note_create", "casenotes:person_add", "discussions:action_add",
            "casenotes:keyworker_add"} <= changing, sorted(changing)
