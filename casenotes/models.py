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
from django.db.models.functions import Upper
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from teams.models import Agency, Team
from workspace.validators import no_nul


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
    family_name = models.CharField(max_length=120, validators=[no_nul])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    category = models.CharField(max_length=40, choices=Category.choices)
    # Why the legal basis changed to what it is, as the manager gave it (each change's
    # reason is in the case's history, and the chronology shows it).
    category_reason = models.CharField(max_length=500, blank=True, default="",
                                       validators=[no_nul])
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
        # Search matches references case-insensitively (UPPER(reference) = UPPER(...)).
        indexes = [models.Index(Upper("reference"), name="casenotes_case_reference_upper")]
        permissions = [
            ("contribute_to_case", "Can add notes to the case"),
        ]

    def __str__(self) -> str:
        return f"{self.family_name} family ({self.reference})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class CaseGrant(models.Model):
    """Why one person, outside the allocated team's membership, may open a case: a
    keyworker added by the team manager, or break-glass emergency access.

    The permissions themselves are guardian rows (CaseUserObjectPermission) that point
    here; expiry is checked on every permission check, so a grant ends by itself at
    `expires_at` whether or not anything tidies it up. A grant is never deleted: it is
    ended (`ended_at`), and its permission rows are removed.
    """

    class Kind(models.TextChoices):
        KEYWORKER = "keyworker", "Keyworker"
        BREAK_GLASS = "break_glass", "Emergency access (break-glass)"

    class Reason(models.TextChoices):
        IMMEDIATE_RISK = "immediate_risk", "Immediate risk to a child"
        OUT_OF_HOURS = "out_of_hours", "Out-of-hours duty"
        OTHER = "other", "Other"

    class Review(models.TextChoices):
        PENDING = "pending", "Not reviewed"
        APPROPRIATE = "appropriate", "Appropriate"
        FOLLOW_UP = "follow_up", "Follow up"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="case_grants")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reason_code = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    reason = models.CharField(max_length=500, blank=True, validators=[no_nul])
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    starts_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 null=True, blank=True, related_name="+")
    review = models.CharField(max_length=20, choices=Review.choices, default=Review.PENDING)
    review_note = models.CharField(max_length=1000, blank=True, validators=[no_nul])
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["kind", "-starts_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user} on case {self.case_id}"

    def is_live(self, now: datetime.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.ended_at is None and (self.expires_at is None or self.expires_at > now)


class CaseUserObjectPermission(UserObjectPermissionBase):
    """An explicit permission on one case for one user (direct foreign key), given by a
    CaseGrant and ending with it."""

    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)
    grant = models.ForeignKey(CaseGrant, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="permission_rows")
    expires_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()


class CaseGroupObjectPermission(GroupObjectPermissionBase):
    """A case's permissions held by a team's group (direct foreign key). The allocated
    team's rows have no expiry; a team that handed the case over keeps `view_case`
    until the end of the hand-over period."""

    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)
    expires_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()


class CaseTransfer(models.Model):
    """A request to move a case to another team (transfer, step up or step down),
    decided by the receiving team's manager. On acceptance the record and its history
    move with the case; the old team keeps read-only access for the hand-over period."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="transfers")
    from_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    to_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="incoming_transfers")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    reason = models.CharField(max_length=1000, validators=[no_nul])
    handover_days = models.PositiveSmallIntegerField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=1000, blank=True, validators=[no_nul])
    handover_ends_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["case"], condition=models.Q(status="requested"),
                                    name="one_open_transfer_per_case"),
        ]

    def __str__(self) -> str:
        return f"Transfer of case {self.case_id} to {self.to_team}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.REQUESTED


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
    full_name = models.CharField(max_length=200, validators=[no_nul])
    date_of_birth = models.DateField(null=True, blank=True)
    role_in_family = models.CharField(max_length=30, choices=RoleInFamily.choices)
    # For an adult with a specialist worker (e.g. a perpetrator programme, adult mental
    # health): notes about them may be limited to this agency while the rest of the
    # children's case stays shared.
    specialist_agency = models.ForeignKey(
        Agency, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The agency whose specialist detail about this adult may be limited to it.",
    )
    # The key of the page they were added on: the same form sent again adds nobody.
    client_ref = models.CharField(max_length=64, blank=True, default="", editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["date_of_birth", "full_name"]
        verbose_name_plural = "people"
        constraints = [
            models.UniqueConstraint(fields=["case", "client_ref"], condition=~models.Q(client_ref=""),
                                    name="person_client_ref_unique"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def is_child(self) -> bool:
        return self.role_in_family == self.RoleInFamily.CHILD

    @property
    def details_version(self) -> int:
        """The id of the latest history version of these details: what an edit of them
        is based on, so that an edit of an older version is refused."""
        return self.history.order_by("-history_id").values_list("history_id", flat=True).first() or 0

    def age_on(self, day: datetime.date) -> int | None:
        if self.date_of_birth is None:
            return None
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))

    @property
    def age(self) -> int | None:
        return self.age_on(timezone.localdate())


#: The most each part of a family's plan may hold.
PLAN_SECTION_MAX_LENGTH = 10_000
#: A plan's review is "due soon" this many days ahead (shown on caseloads and team pages).
PLAN_REVIEW_SOON_DAYS = 14


def plan_review_state(review_on: datetime.date | None) -> str:
    """"overdue" (the review date has passed), "soon" (within PLAN_REVIEW_SOON_DAYS), or
    "" (no date, or further off)."""
    if review_on is None:
        return ""
    days = (review_on - timezone.localdate()).days
    return "overdue" if days < 0 else "soon" if days <= PLAN_REVIEW_SOON_DAYS else ""


class CasePlan(models.Model):
    """The family's plan, written by the team together: what they are worried about,
    what is working well, what needs to happen, and what happens if things do not get
    better; with the date it is next reviewed. One per case, made on its first save;
    every version is kept (simple-history). `version` counts saves, so an edit of an
    older version is refused (nothing is overwritten unseen)."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="plan")
    worries = models.TextField(blank=True, max_length=PLAN_SECTION_MAX_LENGTH, validators=[no_nul])
    strengths = models.TextField(blank=True, max_length=PLAN_SECTION_MAX_LENGTH,
                                 validators=[no_nul])
    next_steps = models.TextField(blank=True, max_length=PLAN_SECTION_MAX_LENGTH,
                                  validators=[no_nul])
    contingency = models.TextField(blank=True, max_length=PLAN_SECTION_MAX_LENGTH,
                                   validators=[no_nul])
    review_on = models.DateField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    #: The parts of the plan, in the order they are shown, with their headings.
    SECTIONS = (
        ("worries", "What we are worried about"),
        ("strengths", "What is working well"),
        ("next_steps", "What needs to happen"),
        ("contingency", "If things do not get better"),
    )
    #: Every field a person writes, with its label (history, audit, messages).
    LABELS = {**dict(SECTIONS), "review_on": "Next review"}

    def __str__(self) -> str:
        return f"Plan for case {self.case_id}"

    @property
    def parts(self) -> list[tuple[str, str]]:
        """(heading, text) of each part, in order."""
        return [(label, getattr(self, name)) for name, label in self.SECTIONS]

    @property
    def review_state(self) -> str:
        return plan_review_state(self.review_on)

    @property
    def review_overdue(self) -> bool:
        return self.review_state == "overdue"


class _NoteHistory(HistoricalRecords):
    """A note's history with who it is about and who may read it. A note saved with no
    links (`_history_no_links`, set by the actions) has none to copy: reading the link
    tables back for its version would cost two queries for nothing."""

    def create_historical_record_m2ms(self, history_instance, instance):
        if getattr(instance, "_history_no_links", False):
            return
        super().create_historical_record_m2ms(history_instance, instance)


NOTE_HISTORY = _NoteHistory(m2m_fields=["people", "readers"])


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
    body = models.TextField(validators=[MaxLengthValidator(settings.NOTE_BODY_MAX_LENGTH), no_nul])
    sensitivity = models.CharField(
        max_length=20, choices=Sensitivity.choices, default=Sensitivity.STANDARD
    )
    is_significant = models.BooleanField(default=False)
    # An agency-restricted note is for the author's agency, unless it is limited to an
    # adult's specialist agency: then `restricted_agency` (copied when written, so a
    # later change to the person does not move the note's audience).
    restricted_person = models.ForeignKey(Person, on_delete=models.PROTECT, null=True,
                                          blank=True, related_name="+")
    restricted_agency = models.ForeignKey(Agency, on_delete=models.PROTECT, null=True,
                                          blank=True, related_name="+")
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

    @property
    def audience_agency_id(self) -> int:
        """For an agency-restricted note, the agency that may read it."""
        return self.restricted_agency_id or self.author_agency_id


class Addendum(models.Model):
    """A correction or addition to a finalised note. Final once written."""

    note = models.ForeignKey(CaseNote, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(validators=[MaxLengthValidator(settings.NOTE_BODY_MAX_LENGTH), no_nul])
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The key of the page it was written on: the same form sent again adds nothing.
    client_ref = models.CharField(max_length=64, blank=True, default="", editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "addenda"
        constraints = [
            models.UniqueConstraint(fields=["author", "client_ref"], condition=~models.Q(client_ref=""),
                                    name="addendum_client_ref_unique"),
        ]

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
        NOTE_SHARED = "note.shared"  # a sealed note's readers changed
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


class CaseVisit(models.Model):
    """When a person last opened a case's page: their caseload counts the notes
    finalised since. Their own reading position, shown to no one else (who saw what is
    the access log's record, not this)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "case"], name="casevisit_unique")]

    def __str__(self) -> str:
        return f"user {self.user_id} saw case {self.case_id} at {self.seen_at:%Y-%m-%d %H:%M}"


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
