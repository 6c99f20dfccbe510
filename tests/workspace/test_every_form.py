"""Every form a signed-in person is shown takes awkward input with a clear answer: a page,
a redirect, "not found" for an id that is not one, never a server error; and a refusal
(400) says why in an error summary and changes nothing.

With the demo busier than it is seeded (a group case discussion running, an emergency
access to review, a transfer waiting), a social worker, a team manager, an IG officer
and the receiving team's manager each walk every page they can reach by links
(tests/workspace/test_every_link.py) and collect the forms that post. Each kind of form
is then sent once, as a browser would send it, with what the page filled in, except for
one field at a time holding an awkward value; then with every field holding the same
one; then with each hidden field (a version, an id) altered as a crafted request would.
Buttons are pressed as Enter presses them (the first submit button, its name and
value sent if it has them).

Not sent: signing out (it would end the walk) and buttons with nothing to type, choose
or alter (such as "Start the discussion": no input of theirs can be awkward).
"""

import datetime
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.urls import resolve
from django.utils import timezone

from tests.helpers import write_fingerprint
from tests.workspace.test_every_link import _walk

NOT_SENT = ("/accounts/logout/",)

#: One field at a time (the rest as the page filled them in).
AWKWARD_ONE = ["x" * 5000, "nul\x00byte", "99999999999999999999999", "-1", "line\r\nbreak"]
#: One hidden field at a time (a version, an id: a crafted request's).
AWKWARD_HIDDEN = ["99999999999999999999999", "-1", "x", ""]
#: Every field at once.
AWKWARD_ALL = ["", "   ", "x" * 5000, "nul\x00byte", "Zoë 😀", "-99999999999999999999999"]

#: Typed or chosen by the person (a hidden field is the page's own, sent as it was
#: except where every field is made awkward at once).
TYPED = {"text", "email", "number", "search", "tel", "url", "date", "password", "textarea",
         "select", "radio", "checkbox"}


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> value the page filled in
    kinds: dict[str, str] = field(default_factory=dict)  # name -> input type
    button: tuple[str, str] | None = None  # the first submit button's name and value
    first_button_seen: bool = False

    @property
    def typed(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind in TYPED]

    @property
    def hidden(self) -> list[str]:
        return [name for name, kind in self.kinds.items()
                if kind == "hidden" and name != "csrfmiddlewaretoken"]


class _Forms(HTMLParser):
    """The page's POST forms, with each field's value as the page filled it in."""

    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            if (attrs.get("method") or "get").lower() == "post":
                self._form = Form(attrs.get("action") or "")
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
            if kind in ("radio", "checkbox"):
                form.kinds.setdefault(name, kind)
                if "checked" in attrs:
                    form.fields[name] = attrs.get("value") or "on"
                else:
                    form.fields.setdefault(name, "")
            else:
                form.kinds[name] = kind
                form.fields[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            form.kinds[name] = "textarea"
            form.fields[name] = ""
            self._textarea = name
        elif tag == "select" and name:
            form.kinds[name] = "select"
            form.fields[name] = ""
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = attrs.get("value") or ""
            if self._first_option is None:
                self._first_option = value
                form.fields[self._select] = value
            if "selected" in attrs:
                form.fields[self._select] = value

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            # Django starts a textarea with a newline the browser drops.
            value = self._form.fields[self._textarea] + data
            self._form.fields[self._textarea] = value.removeprefix("\n")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def _forms(client, known: set) -> list[Form]:
    """Each kind of POST form once (by the page it posts to and what it holds: one
    person's details form stands for every person's, and a kind in `known`, sent for
    someone else already, is not sent again), as first shown; confirmations (closing a
    case, cancelling a discussion) last, so they end nothing the others need."""
    forms: dict[tuple[str, tuple[str, ...]], Form] = {}
    for url, body in _walk(client, keep_pages=True).pages.items():
        page = _Forms()
        page.feed(body)
        for form in page.forms:
            form.action = form.action or url
            if form.action.startswith(NOT_SENT) or not (form.typed or form.hidden):
                continue
            kind = (resolve(form.action).view_name, tuple(sorted(form.kinds)))
            if kind not in known:
                forms.setdefault(kind, form)
    known.update(forms)
    return sorted(forms.values(), key=lambda f: (f.typed == ["confirm"], f.action))


def _check(client, form: Form, data: dict, problems: list[str]) -> None:
    before = write_fingerprint()
    response = client.post(form.action, data)
    shown = {k: (v[:20] + "…" if len(v) > 20 else v) for k, v in data.items()
             if k != "csrfmiddlewaretoken"}
    where = f"POST {form.action} {shown}"
    if response.status_code not in (200, 302, 400, 404, 409, 429):
        problems.append(f"{where}: answered {response.status_code}")
    elif response.status_code == 400:
        if b"govuk-error-summary" not in response.content:
            problems.append(f"{where}: refused (400) with no error summary")
        after = write_fingerprint()
        if {k: v for k, v in after.items() if k != "audit"} != {
                k: v for k, v in before.items() if k != "audit"}:
            problems.append(f"{where}: refused (400), yet changed the record")


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


def test_every_form_shown_answers_awkward_input_clearly_and_a_refusal_changes_nothing(demo):
    _busy(demo)
    # Those shown every kind of form that writes case data or reviews access (an
    # administrator's own form is their password's, sent for the others).
    known: set = set()
    sent: dict[str, int] = {}
    problems: list[str] = []
    for username in ["social.worker", "team.manager", "ig.officer", "locality.manager"]:
        client = demo.client(username)
        forms = _forms(client, known)
        sent[username] = len(forms)
        for form in forms:
            base = {**form.fields, **(dict([form.button]) if form.button else {})}
            for name in form.typed:
                for value in AWKWARD_ONE:
                    _check(client, form, {**base, name: value}, problems)
            for name in form.hidden:  # the page's own values, as a crafted request alters them
                for value in AWKWARD_HIDDEN:
                    _check(client, form, {**base, name: value}, problems)
            for value in AWKWARD_ALL:
                _check(client, form, {**base, **dict.fromkeys(form.fields, value)}, problems)
    assert not problems, "\n".join(problems)
    # Each was shown forms of their own: notes, people and the plan; access, transfers and
    # discussions; the emergency access review; the receiving manager's transfer decision.
    assert all(sent.values()), sent
    assert len(known) >= 20, sorted(known)
