"""Cases, the people in them, case notes and their addenda.

Rules the models carry (the actions enforce the rest):
- a finalised note is never changed or deleted; corrections are Addenda;
- every model keeps its full history (simple-history), with the acting user;
- case access is held in guardian's direct-FK tables below, granted and revoked
  only by actions.
"""

import datetime

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from teams.models import Agency, Team


class Case(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Category(models.TextChoices):
        EARLY_HELP = "early_help", "Early help"
        CHILD_IN_NEED = "child_in_need", "Child in need"
        CHILD_PROTECTION_PLAN = "child_protection_plan", "Child protection plan"
        CHILD_LOOKED_AFTER = "child_looked_after", "Child looked after"

    reference = models.CharField(max_length=32, unique=True)
    family_name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    category = models.CharField(max_length=40, choices=Category.choices)
    allocated_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="cases")
    lead_practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="led_cases",
    )
    opened_on = models.DateField(default=timezone.localdate)
    closed_on = models.DateField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["family_name", "reference"]
        permissions = [
            ("contribute_to_case", "Can add notes to the case"),
        ]

    def __str__(self) -> str:
        return f"{self.family_name} family ({self.reference})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class CaseUserObjectPermission(UserObjectPermissionBase):
    """An explicit grant on one case to one user (direct foreign key)."""

    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)
    history = HistoricalRecords()


class CaseGroupObjectPermission(GroupObjectPermissionBase):
    """A case's permissions held by a team's group (direct foreign key)."""

    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)
    history = HistoricalRecords()


class Person(models.Model):
    class RoleInFamily(models.TextChoices):
        CHILD = "child", "Child"
        MOTHER = "mother", "Mother"
        FATHER = "father", "Father"
        STEP_PARENT = "step_parent", "Step-parent"
        PARENTS_PARTNER = "parents_partner", "Parent's partner"
        GRANDPARENT = "grandparent", "Grandparent"
        KINSHIP_CARER = "kinship_carer", "Kinship carer"
        OTHER_ADULT = "other_adult", "Other adult"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="people")
    full_name = models.CharField(max_length=200)
    date_of_birth = models.DateField(null=True, blank=True)
    role_in_family = models.CharField(max_length=30, choices=RoleInFamily.choices)
    history = HistoricalRecords()

    class Meta:
        ordering = ["date_of_birth", "full_name"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.full_name

    @property
    def is_child(self) -> bool:
        return self.role_in_family == self.RoleInFamily.CHILD

    def age_on(self, day: datetime.date) -> int | None:
        if self.date_of_birth is None:
            return None
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))

    @property
    def age(self) -> int | None:
        return self.age_on(timezone.localdate())


NOTE_HISTORY = HistoricalRecords(m2m_fields=["people", "readers"])


class CaseNote(models.Model):
    class NoteType(models.TextChoices):
        HOME_VISIT = "home_visit", "Home visit"
        OFFICE_VISIT = "office_visit", "Office visit"
        PHONE_CALL = "phone_call", "Phone call"
        MULTI_AGENCY_MEETING = "multi_agency_meeting", "Multi-agency meeting"
        SUPERVISION = "supervision", "Supervision"
        DIRECT_WORK = "direct_work", "Direct work with a child"
        STRATEGY_DISCUSSION = "strategy_discussion", "Strategy discussion"
        CHILD_PROTECTION_CONFERENCE = "cp_conference", "Child protection conference"
        GROUP_CASE_DISCUSSION = "group_case_discussion", "Group case discussion"
        OTHER = "other", "Other"

    class Sensitivity(models.TextChoices):
        STANDARD = "standard", "Standard"
        AGENCY_RESTRICTED = "agency_restricted", "Agency-restricted"
        SEALED = "sealed", "Sealed"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        FINAL = "final", "Final"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_notes"
    )
    author_agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    note_type = models.CharField(max_length=40, choices=NoteType.choices)
    occurred_at = models.DateTimeField()
    body = models.TextField(validators=[MaxLengthValidator(settings.NOTE_BODY_MAX_LENGTH)])
    sensitivity = models.CharField(
        max_length=20, choices=Sensitivity.choices, default=Sensitivity.STANDARD
    )
    is_significant = models.BooleanField(default=False)
    people = models.ManyToManyField(Person, blank=True, related_name="notes")
    readers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="sealed_notes_shared",
        help_text="For a sealed note: the people, besides its author, who may read it.",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    finalised_at = models.DateTimeField(null=True, blank=True)
    # Sent by the page with an autosaved new draft: if the reply is lost and the save is
    # sent again, the draft already made is updated instead of a second one created.
    client_ref = models.CharField(max_length=64, blank=True, default="", editable=False)
    # One version per action, including who the note is about and who may read it:
    # actions write it through NOTE_HISTORY once the links are set (see actions.py).
    history = NOTE_HISTORY

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["case", "-occurred_at"])]
        constraints = [
            models.UniqueConstraint(fields=["author", "client_ref"], condition=~models.Q(client_ref=""),
                                    name="casenote_client_ref_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_note_type_display()} on {self.occurred_at:%d %b %Y}"

    @property
    def is_final(self) -> bool:
        return self.state == self.State.FINAL


class Addendum(models.Model):
    """A correction or addition to a finalised note. Final once written."""

    note = models.ForeignKey(CaseNote, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(validators=[MaxLengthValidator(settings.NOTE_BODY_MAX_LENGTH)])
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "addenda"

    def __str__(self) -> str:
        return f"Addendum to note {self.note_id}"




class CaseEvent(models.Model):
    """One numbered change to a case, written in the same transaction as the change.

    The database is the record: live notices are sent from these rows after commit,
    and a reconnecting client asks for the rows after the last number it saw. Rows
    carry ids only, never content; who may see what is decided when it is sent.
    """

    class Kind(models.TextChoices):
        NOTE_CREATED = "note.created"
        NOTE_UPDATED = "note.updated"
        NOTE_FINALISED = "note.finalised"
        ADDENDUM_CREATED = "addendum.created"
        CASE_UPDATED = "case.updated"
        PERSON_ADDED = "person.added"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=30, choices=Kind.choices)
    note = models.ForeignKey(CaseNote, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["case", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["case", "seq"], name="case_event_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.case_id}#{self.seq} {self.kind}"


class RoomPresence(models.Model):
    """One open live connection to a case room (a person with two tabs has two rows).

    Labels are copied at join so the presence list needs no joins. Rows of a process
    that died go stale and drop out of the list after `PRESENCE_TTL`.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    display_name = models.CharField(max_length=150)
    role_label = models.CharField(max_length=80, blank=True)
    agency_label = models.CharField(max_length=40, blank=True)
    joined_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.display_name} in case {self.case_id}"
