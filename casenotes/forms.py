"""Forms for notes and addenda. They parse and check shape; the actions decide.

Explicit fields only (no ModelForm): a field the form does not declare can never be
written, whatever a request sends.
"""

import datetime
import re

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from casenotes.models import Case, CaseNote, Person
from casenotes.rules import CLOCK_SKEW, FUTURE_MESSAGE

_TIME = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*$")


class NoteForm(forms.Form):
    note_type = forms.ChoiceField(
        choices=[("", "Choose a type")] + list(CaseNote.NoteType.choices),
        error_messages={"required": "Choose the type of note.",
                        "invalid_choice": "Choose the type of note."},
    )
    occurred_day = forms.CharField(required=False, max_length=2)
    occurred_month = forms.CharField(required=False, max_length=2)
    occurred_year = forms.CharField(required=False, max_length=4)
    occurred_time = forms.CharField(required=False, max_length=5)
    body = forms.CharField(
        widget=forms.Textarea, strip=True, max_length=settings.NOTE_BODY_MAX_LENGTH,
        error_messages={
            "required": "Enter the note.",
            "max_length": f"The note must be {settings.NOTE_BODY_MAX_LENGTH:,} characters or "
                          "fewer (it has %(show_value)s).",
        },
    )
    sensitivity = forms.ChoiceField(
        choices=CaseNote.Sensitivity.choices, initial=CaseNote.Sensitivity.STANDARD,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose who may read this note.",
                        "invalid_choice": "Choose who may read this note."},
    )
    is_significant = forms.BooleanField(required=False)
    people = forms.ModelMultipleChoiceField(
        queryset=Person.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose people from this family only.",
                        "invalid_pk_value": "Choose people from this family only."},
    )
    readers = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Named readers must be people working on this case.",
                        "invalid_pk_value": "Named readers must be people working on this case."},
    )

    def __init__(self, *args, case: Case, readers_queryset, **kwargs):
        super().__init__(*args, **kwargs)
        self.case = case
        self.fields["people"].queryset = case.people.all()
        self.fields["readers"].queryset = readers_queryset
        self.fields["readers"].label_from_instance = lambda u: u.get_full_name() or u.username

    def clean(self):
        cleaned = super().clean()
        parts = [cleaned.get(f"occurred_{p}", "").strip() for p in ("day", "month", "year")]
        time_text = cleaned.get("occurred_time", "").strip()
        if not any(parts) and not time_text:
            self.add_error("occurred_day", "Enter the date this happened.")
            return cleaned
        try:
            day, month, year = (int(p) for p in parts)
            date = datetime.date(year, month, day)
            if year < 1900:
                raise ValueError
        except ValueError:
            self.add_error("occurred_day", "Enter a real date, for example 27 3 2026.")
            return cleaned
        match = _TIME.match(time_text)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            self.add_error("occurred_time", "Enter the time in 24-hour format, for example 14:30.")
            return cleaned
        occurred_at = timezone.make_aware(
            datetime.datetime.combine(date, datetime.time(int(match[1]), int(match[2])))
        )
        if occurred_at > timezone.now() + CLOCK_SKEW:
            self.add_error("occurred_day", FUTURE_MESSAGE)
            return cleaned
        cleaned["occurred_at"] = occurred_at
        return cleaned

    @classmethod
    def initial_for(cls, note: CaseNote | None = None) -> dict:
        moment = timezone.localtime(note.occurred_at if note else timezone.now())
        initial = {
            "occurred_day": moment.day, "occurred_month": moment.month,
            "occurred_year": moment.year, "occurred_time": moment.strftime("%H:%M"),
        }
        if note is not None:
            initial.update(
                note_type=note.note_type, body=note.body, sensitivity=note.sensitivity,
                is_significant=note.is_significant, people=list(note.people.all()),
                readers=list(note.readers.all()),
            )
        return initial


class DraftEditForm(NoteForm):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class AddendumForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea, strip=True, max_length=settings.NOTE_BODY_MAX_LENGTH,
        error_messages={
            "required": "Enter the addendum.",
            "max_length": f"The addendum must be {settings.NOTE_BODY_MAX_LENGTH:,} characters "
                          "or fewer (it has %(show_value)s).",
        },
    )


class NoteFilterForm(forms.Form):
    note_type = forms.ChoiceField(
        required=False, choices=[("", "All types")] + list(CaseNote.NoteType.choices),
        error_messages={"invalid_choice": "Choose a note type from the list."},
    )
    person = forms.ModelChoiceField(
        queryset=Person.objects.none(), required=False, empty_label="Everyone",
        error_messages={"invalid_choice": "Choose a person in this family."},
    )

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = case.people.all()
