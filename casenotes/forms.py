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

from casenotes.models import Case, CaseGrant, CaseNote, CasePlan, Person
from casenotes.rules import CLOCK_SKEW, FUTURE_MESSAGE
from teams.models import Agency
from workspace.forms import ChoicesById, version_field

_TIME = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*$")


def date_parts(cleaned: dict, prefix: str) -> list[str]:
    """The day, month and year typed into a GOV.UK date input named `prefix`."""
    return [cleaned.get(f"{prefix}_{part}", "").strip() for part in ("day", "month", "year")]


def date_from_parts(parts: list[str]) -> datetime.date:
    """A real date from 1900 on, from day, month and year; ValueError otherwise."""
    day, month, year = (int(part) for part in parts)
    if year < 1900:
        raise ValueError(year)
    try:
        return datetime.date(year, month, day)
    except OverflowError as error:  # a number too large for any date part
        raise ValueError(parts) from error


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
    people = ChoicesById(
        queryset=Person.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose people from this family only.",
                        "invalid_pk_value": "Choose people from this family only."},
    )
    readers = ChoicesById(
        queryset=get_user_model().objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Named readers must be people working on this case.",
                        "invalid_pk_value": "Named readers must be people working on this case."},
    )
    restricted_person = forms.ModelChoiceField(
        queryset=Person.objects.none(), required=False,
        empty_label="No: the author's agency",
        error_messages={"invalid_choice": "Choose an adult in this family with a specialist agency."},
    )

    def __init__(self, *args, case: Case, readers_queryset, **kwargs):
        super().__init__(*args, **kwargs)
        self.case = case
        self.fields["people"].queryset = case.people.all()
        self.fields["restricted_person"].queryset = case.people.filter(
            specialist_agency__isnull=False).exclude(role_in_family=Person.RoleInFamily.CHILD) \
            .select_related("specialist_agency")
        self.fields["restricted_person"].label_from_instance = (
            lambda p: f"{p.full_name}: {p.specialist_agency.short_name} only")
        self.fields["readers"].queryset = readers_queryset
        self.fields["readers"].label_from_instance = lambda u: u.get_full_name() or u.username

    @property
    def moment_in_future(self) -> bool:
        """The date and time together are in the future: both parts are marked."""
        return FUTURE_MESSAGE in self.errors.get("occurred_day", [])

    def clean(self):
        cleaned = super().clean()
        parts = date_parts(cleaned, "occurred")
        time_text = cleaned.get("occurred_time", "").strip()
        if not any(parts) and not time_text:
            self.add_error("occurred_day", "Enter the date this happened.")
            return cleaned
        try:
            date = date_from_parts(parts)
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
                readers=list(note.readers.all()), restricted_person=note.restricted_person_id,
            )
        return initial


class DraftEditForm(NoteForm):
    version = version_field("Reload the page and make your changes again.")


class AddendumForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea, strip=True, max_length=settings.NOTE_BODY_MAX_LENGTH,
        error_messages={
            "required": "Enter the addendum.",
            "max_length": f"The addendum must be {settings.NOTE_BODY_MAX_LENGTH:,} characters "
                          "or fewer (it has %(show_value)s).",
        },
    )


class PersonFilterForm(forms.Form):
    """Narrows a case's list to one person in the family (the chronology)."""

    person = forms.ModelChoiceField(
        queryset=Person.objects.none(), required=False, empty_label="Everyone",
        error_messages={"invalid_choice": "Choose a person in this family."},
    )

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = case.people.all()


class NoteFilterForm(PersonFilterForm):
    words = forms.CharField(
        required=False, max_length=100,
        error_messages={"max_length": "Enter words to find of 100 characters or fewer."},
    )
    note_type = forms.ChoiceField(
        required=False, choices=[("", "All types")] + list(CaseNote.NoteType.choices),
        error_messages={"invalid_choice": "Choose a note type from the list."},
    )
    field_order = ["words", "note_type", "person"]


# --- case access ------------------------------------------------------------------------

def _person_label(user) -> str:
    return user.get_full_name() or user.get_username()


class LegalBasisForm(forms.Form):
    category = forms.ChoiceField(
        choices=Case.Category.choices,
        error_messages={"required": "Choose the legal basis.",
                        "invalid_choice": "Choose the legal basis from the list."},
    )
    reason = forms.CharField(
        widget=forms.Textarea, max_length=500, strip=True,
        error_messages={"required": "Enter why the legal basis is changing, for example the "
                                    "decision of a child protection conference.",
                        "max_length": "The reason must be 500 characters or fewer "
                                      "(it has %(show_value)s)."},
    )


class CloseCaseForm(forms.Form):
    confirm = forms.BooleanField(error_messages={
        "required": "Confirm that the case is to be closed: once closed, nothing can be added to it."})


class LeadForm(forms.Form):
    lead = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), empty_label="Choose a practitioner",
        error_messages={"required": "Choose the lead practitioner.",
                        "invalid_choice": "Choose a member of the team."},
    )

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lead"].queryset = members
        self.fields["lead"].label_from_instance = _person_label


class KeyworkerForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), empty_label="Choose a practitioner",
        error_messages={"required": "Choose the practitioner to add.",
                        "invalid_choice": "Choose a practitioner from the list."},
    )
    until = forms.DateField(
        required=False, input_formats=["%Y-%m-%d", "%d/%m/%Y", "%d %m %Y"],
        error_messages={"invalid": "Enter a real date, for example 31/03/2027."},
    )

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = candidates
        self.fields["user"].label_from_instance = _person_label


class TransferRequestForm(forms.Form):
    to_team = forms.ModelChoiceField(
        queryset=None, empty_label="Choose a team",
        error_messages={"required": "Choose the team to transfer the case to.",
                        "invalid_choice": "Choose a team from the list."},
    )
    reason = forms.CharField(
        widget=forms.Textarea, max_length=1000, strip=True,
        error_messages={"required": "Enter the reason for the transfer.",
                        "max_length": "The reason must be 1,000 characters or fewer "
                                      "(it has %(show_value)s)."},
    )
    handover_days = forms.IntegerField(
        min_value=0, max_value=settings.HANDOVER_DAYS_MAX, initial=settings.HANDOVER_DAYS,
        error_messages={
            "required": "Enter the hand-over period in days.",
            "invalid": "Enter the hand-over period as a whole number of days.",
            "min_value": f"The hand-over period must be between 0 and {settings.HANDOVER_DAYS_MAX} days.",
            "max_value": f"The hand-over period must be between 0 and {settings.HANDOVER_DAYS_MAX} days.",
        },
    )

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_team"].queryset = teams


class TransferDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("accept", "Accept the case"), ("reject", "Reject the request")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose whether to accept or reject the request.",
                        "invalid_choice": "Choose whether to accept or reject the request."},
    )
    decision_reason = forms.CharField(
        widget=forms.Textarea, max_length=1000, strip=True,
        error_messages={"required": "Enter the reason for your decision.",
                        "max_length": "The reason must be 1,000 characters or fewer "
                                      "(it has %(show_value)s)."},
    )


class BreakGlassForm(forms.Form):
    reason_code = forms.ChoiceField(
        choices=CaseGrant.Reason.choices, widget=forms.RadioSelect,
        error_messages={"required": "Choose why you need emergency access.",
                        "invalid_choice": "Choose why you need emergency access."},
    )
    reason = forms.CharField(
        required=False, widget=forms.Textarea, max_length=500, strip=True,
        error_messages={"max_length": "The reason must be 500 characters or fewer "
                                      "(it has %(show_value)s)."},
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason_code") == CaseGrant.Reason.OTHER and not cleaned.get("reason"):
            self.add_error("reason", "Explain why you need emergency access.")
        return cleaned


class SearchForm(forms.Form):
    q = forms.CharField(
        max_length=100, strip=True, min_length=settings.SEARCH_MIN_LENGTH,
        error_messages={
            "required": "Enter a name or case reference.",
            "min_length": f"Enter at least {settings.SEARCH_MIN_LENGTH} characters.",
            "max_length": "Enter 100 characters or fewer.",
        },
    )


class ShareForm(forms.Form):
    readers = ChoicesById(
        queryset=get_user_model().objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Named readers must be people working on this case.",
                        "invalid_pk_value": "Named readers must be people working on this case."},
    )

    def __init__(self, *args, readers_queryset, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["readers"].queryset = readers_queryset
        self.fields["readers"].label_from_instance = _person_label


class PersonForm(forms.Form):
    """A person in the family: name, role, and date of birth as GOV.UK date parts
    (optional: not every adult's is known). `based_on`, for a change of details only,
    is the version of the details the page showed."""

    full_name = forms.CharField(
        max_length=Person._meta.get_field("full_name").max_length, strip=True,
        error_messages={"required": "Enter the person's full name.",
                        "max_length": "The name must be %(limit_value)d characters or fewer."})
    role_in_family = forms.ChoiceField(
        choices=Person.RoleInFamily.choices, widget=forms.RadioSelect,
        error_messages={"required": "Choose their role in the family.",
                        "invalid_choice": "Choose their role in the family."})
    birth_day = forms.CharField(required=False, max_length=2)
    birth_month = forms.CharField(required=False, max_length=2)
    birth_year = forms.CharField(required=False, max_length=4)

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            # The id of the details' latest history row.
            self.fields["based_on"] = version_field(
                "Reload the page and make your changes again.", min_value=0)

    def clean(self):
        cleaned = super().clean()
        parts = date_parts(cleaned, "birth")
        cleaned["date_of_birth"] = None
        if not any(parts):
            return cleaned
        try:
            born = date_from_parts(parts)
        except ValueError:
            self.add_error("birth_day", "Enter a real date of birth, for example 27 3 2019, "
                                        "or leave it blank if it is not known.")
            return cleaned
        if born > timezone.localdate():
            self.add_error("birth_day", "The date of birth must be today or in the past.")
            return cleaned
        cleaned["date_of_birth"] = born
        return cleaned

    @staticmethod
    def initial_for(person: Person) -> dict:
        born = person.date_of_birth
        return {"full_name": person.full_name, "role_in_family": person.role_in_family,
                "birth_day": born.day if born else "", "birth_month": born.month if born else "",
                "birth_year": born.year if born else "", "based_on": person.details_version}


def _plan_text(label: str) -> forms.CharField:
    # Longer text than the limit is kept in the form (the action explains the limit),
    # so nothing typed is thrown away by the browser or the form.
    return forms.CharField(required=False, strip=True, label=label)


class PlanForm(forms.Form):
    """The family's plan: its four parts and the next review date (GOV.UK date parts,
    optional). `based_on` is the version of the plan the page showed."""

    worries = _plan_text("What we are worried about")
    strengths = _plan_text("What is working well")
    next_steps = _plan_text("What needs to happen")
    contingency = _plan_text("If things do not get better")
    # No lengths here: `clean` gives one message for any date that is not real.
    review_day = forms.CharField(required=False)
    review_month = forms.CharField(required=False)
    review_year = forms.CharField(required=False)
    based_on = version_field("Reload the page and make your changes again.", min_value=0)

    SECTION_NAMES = [name for name, _ in CasePlan.SECTIONS]

    def clean(self):
        cleaned = super().clean()
        cleaned["sections"] = {name: cleaned.get(name, "") for name, _ in CasePlan.SECTIONS}
        parts = date_parts(cleaned, "review")
        cleaned["review_on"] = None
        if any(parts):
            try:
                cleaned["review_on"] = date_from_parts(parts)
            except ValueError:
                self.add_error("review_day", "Enter a real review date, for example 15 1 2027, "
                                             "or leave it blank if none is set.")
        return cleaned

    @staticmethod
    def review_parts(review: datetime.date | None) -> dict:
        return {"review_day": review.day if review else "",
                "review_month": review.month if review else "",
                "review_year": review.year if review else ""}

    @classmethod
    def initial_for(cls, plan: CasePlan | None) -> dict:
        if plan is None:
            return {"based_on": 0}
        return {**{name: getattr(plan, name) for name in cls.SECTION_NAMES},
                **cls.review_parts(plan.review_on), "based_on": plan.version}

    @classmethod
    def initial_from(cls, data) -> dict:
        """The form as posted, to show again unchecked (nothing is saved)."""
        names = [*cls.SECTION_NAMES, "review_day", "review_month", "review_year", "based_on"]
        return {name: data.get(name, "") for name in names}


class SpecialistAgencyForm(forms.Form):
    specialist_agency = forms.ModelChoiceField(
        queryset=Agency.objects.all(), required=False, empty_label="None",
        error_messages={"invalid_choice": "Choose an agency from the list."},
    )


class CaseForm(forms.Form):
    reference = forms.RegexField(
        regex=r"^[A-Z0-9][A-Z0-9/-]{2,31}$", strip=True,
        error_messages={"required": "Enter the case reference.",
                        "invalid": "Enter the case reference in capitals, numbers, / and -, "
                                   "for example FS-26-0142."})
    family_name = forms.CharField(max_length=120, strip=True,
                                  error_messages={"required": "Enter the family name."})
    category = forms.ChoiceField(
        choices=[("", "Choose a category")] + list(Case.Category.choices),
        error_messages={"required": "Choose the category.",
                        "invalid_choice": "Choose the category."})
    lead_practitioner = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False,
        empty_label="Not yet allocated",
        error_messages={"invalid_choice": "Choose a member of the team."})

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lead_practitioner"].queryset = members
        self.fields["lead_practitioner"].label_from_instance = _person_label

    def clean_reference(self):
        return self.cleaned_data["reference"].upper()
