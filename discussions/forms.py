"""Forms of the discussion pages: they turn posted text into values; the actions
check the rules (one set of messages, whatever the caller)."""

import datetime
import re

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from casenotes.models import Case
from discussions.models import ACTION_MAX_LENGTH, SECTION_MAX_LENGTH
from workspace.forms import ChoicesById, version_field

_TIME = re.compile(r"^([0-9]{1,2})[:.]([0-9]{2})$")
DATE_FORMATS = ["%d/%m/%Y", "%d %m %Y", "%Y-%m-%d", "%d-%m-%Y"]


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


class ScheduleForm(forms.Form):
    title = forms.CharField(required=False, max_length=120, strip=True, error_messages={
        "max_length": "The title must be 120 characters or fewer."})
    date = forms.DateField(input_formats=DATE_FORMATS, error_messages={
        "required": "Enter the date of the discussion.",
        "invalid": "Enter a real date, for example 27/11/2026."})
    time = forms.CharField(max_length=5, strip=True, error_messages={
        "required": "Enter the time the discussion starts, for example 10:00."})
    # Checkbox widgets, as the page shows them: each box gets its own id for its label.
    cases = ChoicesById(
        queryset=Case.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose cases from the list.",
                        "invalid_pk_value": "Choose cases from the list."})
    invitees = ChoicesById(
        queryset=get_user_model().objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose people from the list.",
                        "invalid_pk_value": "Choose people from the list."})

    def __init__(self, *args, cases, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cases"].queryset = cases
        self.fields["cases"].label_from_instance = lambda c: f"{c.family_name} family ({c.reference})"
        self.fields["invitees"].queryset = members
        self.fields["invitees"].label_from_instance = _person

    def clean(self):
        cleaned = super().clean()
        match = _TIME.match(cleaned.get("time") or "")
        if "time" in cleaned and (not match or int(match[1]) > 23 or int(match[2]) > 59):
            self.add_error("time", "Enter the time in 24-hour format, for example 10:00.")
        elif cleaned.get("date") and match:
            cleaned["scheduled_for"] = timezone.make_aware(datetime.datetime.combine(
                cleaned["date"], datetime.time(int(match[1]), int(match[2]))))
        return cleaned

    def ordered_cases(self) -> list[Case]:
        """The chosen cases in the order they were listed (the agenda's order)."""
        chosen = {c.pk for c in self.cleaned_data.get("cases", [])}
        return [c for c in self.fields["cases"].queryset if c.pk in chosen]


class SectionForm(forms.Form):
    text = forms.CharField(required=False, strip=False, widget=forms.Textarea,
                           max_length=SECTION_MAX_LENGTH, error_messages={
                               "max_length": f"A section must be {SECTION_MAX_LENGTH:,} characters "
                                             "or fewer (this has %(show_value)s)."})
    version = version_field("Reload the page and try again.")


class ActionForm(forms.Form):
    description = forms.CharField(required=False, max_length=ACTION_MAX_LENGTH, strip=True,
                                  error_messages={"max_length": "Describe the action in "
                                                  f"{ACTION_MAX_LENGTH} characters or fewer."})
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False,
                                   empty_label="Choose who will do this",
                                   error_messages={"invalid_choice": "Choose a team member from the list."})
    due_on = forms.DateField(required=False, input_formats=DATE_FORMATS, error_messages={
        "invalid": "Enter a real date, for example 31/12/2026."})

    def __init__(self, *args, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = get_user_model().objects.filter(
            pk__in=[u.pk for u in owners]).order_by("first_name", "last_name", "username")
        self.fields["owner"].label_from_instance = _person


class CompleteForm(forms.Form):
    outcome = forms.CharField(required=False, max_length=500, strip=True, error_messages={
        "max_length": "Describe what was done in 500 characters or fewer."})
