"""Forms for the IG pages: they check shape and turn names into ids; bad input gets a
clear message and searches nothing."""

import datetime

from django import forms
from django.utils import timezone

from audit import selectors
from audit.models import AuditAction, Outcome

_DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d %m %Y"]
#: The log starts with the service; a range reaching further back than this is a typo.
EARLIEST = datetime.date(2000, 1, 1)


#: The access log's actions in the groups they are numbered in (`AuditAction`), for a
#: list a person can find one in.
_ACTION_GROUPS = {
    1: "Signing in and out", 2: "Reading case data", 3: "Writing notes",
    4: "Changing cases and families", 5: "Organisation, membership and access",
    6: "Refusals", 7: "Reading the access log", 8: "Group case discussions",
}


def _grouped_actions() -> list:
    """The actions as (group, choices), in number order; one outside every group is
    under "Other", so none is ever missing from the list."""
    groups: dict[str, list] = {}
    for action in sorted(AuditAction, key=lambda a: a.value):
        group = _ACTION_GROUPS.get(action.value // 100, "Other")
        groups.setdefault(group, []).append((action.value, action.label))
    order = [*_ACTION_GROUPS.values(), "Other"]
    return [(group, groups[group]) for group in order if group in groups]


class LogSearchForm(forms.Form):
    user = forms.CharField(required=False, max_length=150, label="User name")
    case = forms.CharField(required=False, max_length=200, label="Case reference or person's name")
    action = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None,
        choices=lambda: [("", "Any action")] + _grouped_actions(),
        error_messages={"invalid_choice": "Choose an action from the list."})
    outcome = forms.ChoiceField(required=False, choices=[("", "Allowed or denied")] + list(
        Outcome.choices), error_messages={"invalid_choice": "Choose allowed or denied."})
    since = forms.DateField(required=False, input_formats=_DATE_FORMATS, label="From",
                            error_messages={"invalid": "Enter a real date, for example 23/11/2026."})
    until = forms.DateField(required=False, input_formats=_DATE_FORMATS, label="To",
                            error_messages={"invalid": "Enter a real date, for example 23/11/2026."})
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000,
                              error_messages={"min_value": "Choose a page from 1.",
                                              "max_value": "That page is too far: narrow the search.",
                                              "invalid": "Choose a page number."})

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        today = timezone.localdate()
        for name, day in (("since", since), ("until", until)):
            if day and not EARLIEST <= day <= today + datetime.timedelta(days=1):
                self.add_error(name, f"Enter a date between {EARLIEST:%d/%m/%Y} and today.")
        if since and until and since > until:
            self.add_error("until", "The 'To' date must be the same as or after the 'From' date.")
        username = (cleaned.get("user") or "").strip()
        cleaned["user_obj"] = None
        if username:
            cleaned["user_obj"] = selectors.find_user(username)
            if cleaned["user_obj"] is None:
                self.add_error("user", f"There is no user called {username!r}.")
        case_text = (cleaned.get("case") or "").strip()
        cleaned["case_ids"] = None
        if case_text:
            ids = selectors.cases_matching(case_text)
            if not ids:
                self.add_error("case", f"No case or person matches {case_text!r}.")
            cleaned["case_ids"] = tuple(ids)
        return cleaned

    def spec(self) -> selectors.LogFilter:
        data = self.cleaned_data
        to_moment = _start_of
        return selectors.LogFilter(
            user_id=data["user_obj"].pk if data.get("user_obj") else None,
            case_ids=data.get("case_ids"), action=data.get("action"),
            outcome=data.get("outcome") or "",
            since=to_moment(data["since"]) if data.get("since") else None,
            until=to_moment(data["until"] + datetime.timedelta(days=1)) if data.get("until") else None,
        )


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class ReviewForm(forms.Form):
    review = forms.ChoiceField(
        choices=[("appropriate", "Appropriate"), ("follow_up", "Follow up")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the outcome of your review.",
                        "invalid_choice": "Choose the outcome of your review."})
    note = forms.CharField(required=False, widget=forms.Textarea, max_length=1000, strip=True,
                           error_messages={"max_length": "The note must be 1,000 characters or "
                                                         "fewer (it has %(show_value)s)."})
    end_now = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("review") == "follow_up" and not cleaned.get("note"):
            self.add_error("note", "Say what needs following up.")
        return cleaned


class SarSearchForm(forms.Form):
    """Finding the subject of a request by name (`selectors.sar_candidates`)."""

    q = forms.CharField(required=False, max_length=100, label="Person's name",
                        error_messages={"max_length": "Enter the name in 100 characters or fewer.",
                                        "null_characters_not_allowed":
                                            "Enter the name without control characters."})


class SarForm(forms.Form):
    person = forms.IntegerField(min_value=1, error_messages={
        "required": "Choose the person from the search results.",
        "invalid": "Choose the person from the search results.",
        "min_value": "Choose the person from the search results."})
    reference = forms.RegexField(
        regex=r"^[A-Za-z0-9/_-]{3,40}$", strip=True,
        error_messages={"required": "Enter the request's reference.",
                        "invalid": "Enter the request's reference: 3 to 40 letters, numbers, "
                                   "/, _ or -."})
    format = forms.ChoiceField(choices=[("html", "Printable page"), ("json", "JSON file")],
                               initial="html", widget=forms.RadioSelect,
                               error_messages={"required": "Choose a format.",
                                               "invalid_choice": "Choose a format."})
