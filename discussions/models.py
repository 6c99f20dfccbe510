"""Group case discussions: the team's supervision meeting and its shared record.

A team manager schedules a Discussion with an ordered agenda of cases (AgendaItem)
and invites members of the team. While it runs, participants write each item's
record together: four Sections, each versioned (every version is in history), and
the Actions agreed (what, owner, due date). A save based on an old version is merged
where that is safe, or kept whole as a KeptText beside the section to be resolved:
nothing typed is lost. Sign-off locks the record, files it into each case as a
finalised note, and turns each action into a task on its owner's list.

Rules the models carry (the actions enforce the rest):
- every model keeps its full history (simple-history), with the acting user;
- a signed-off discussion's sections, actions and kept texts never change again,
  except an action being marked done by its owner.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from casenotes.models import Case, CaseNote
from teams.models import Team
from workspace.validators import no_nul

#: The most one section may hold (four of them and the actions fit in one note).
SECTION_MAX_LENGTH = 4_000
ACTION_MAX_LENGTH = 300


class Discussion(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        IN_PROGRESS = "in_progress", "In progress"
        SIGNED_OFF = "signed_off", "Signed off"
        CANCELLED = "cancelled", "Cancelled"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="discussions")
    title = models.CharField(max_length=120, default="Group case discussion", validators=[no_nul])
    scheduled_for = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    chair = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="chaired_discussions")
    invitees = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Invitation",
                                      related_name="discussion_invitations")
    current_item = models.ForeignKey("AgendaItem", on_delete=models.PROTECT, null=True,
                                     blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    signed_off_at = models.DateTimeField(null=True, blank=True)
    signed_off_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                      null=True, blank=True, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-scheduled_for", "-pk"]
        indexes = [models.Index(fields=["team", "status", "scheduled_for"],
                                name="discussion_team_status")]

    def __str__(self) -> str:
        return f"{self.title}, {timezone.localtime(self.scheduled_for):%d %b %Y %H:%M}"

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.IN_PROGRESS

    @property
    def is_signed_off(self) -> bool:
        return self.status == self.Status.SIGNED_OFF


class Invitation(models.Model):
    discussion = models.ForeignKey(Discussion, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["discussion", "user"],
                                               name="discussion_invitation_unique")]

    def __str__(self) -> str:
        return f"user {self.user_id} invited to discussion {self.discussion_id}"


class AgendaItem(models.Model):
    discussion = models.ForeignKey(Discussion, on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="discussion_items")
    position = models.PositiveSmallIntegerField()
    #: The finalised note the record was filed as, at sign-off.
    filed_note = models.ForeignKey(CaseNote, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["discussion", "position"]
        constraints = [
            models.UniqueConstraint(fields=["discussion", "case"], name="agenda_case_once"),
            models.UniqueConstraint(fields=["discussion", "position"], name="agenda_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.case.reference}"


class Section(models.Model):
    class Kind(models.TextChoices):
        WORRIES = "worries", "What are we worried about?"
        WORKING_WELL = "working_well", "What is working well?"
        NEEDS = "needs", "What needs to happen?"
        DECISION = "decision", "Decision"

    item = models.ForeignKey(AgendaItem, on_delete=models.CASCADE, related_name="sections")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    text = models.TextField(blank=True, max_length=SECTION_MAX_LENGTH, validators=[no_nul])
    #: Goes up by one with every saved change; a save names the version it was based on.
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["item", "pk"]
        constraints = [models.UniqueConstraint(fields=["item", "kind"], name="section_kind_once")]

    def __str__(self) -> str:
        return f"{self.item} {self.get_kind_display()} v{self.version}"


class KeptText(models.Model):
    """Text that could not be merged into a section (someone else changed the same
    words meanwhile). It stays beside the section until someone resolves it."""

    class Resolution(models.TextChoices):
        ADDED = "added", "Added to the section"
        DISMISSED = "dismissed", "Dismissed"

    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="kept_texts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=SECTION_MAX_LENGTH, validators=[no_nul])
    based_on_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                    blank=True, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["section", "created_at", "pk"]

    def __str__(self) -> str:
        return f"kept text {self.pk} beside section {self.section_id}"

    @property
    def is_open(self) -> bool:
        return not self.resolution


class AgreedAction(models.Model):
    """An action agreed in the discussion; after sign-off, a task on its owner's list."""

    class State(models.TextChoices):
        PROPOSED = "proposed", "Proposed"  # in the meeting, not yet signed off
        OPEN = "open", "To do"
        DONE = "done", "Done"

    item = models.ForeignKey(AgendaItem, on_delete=models.CASCADE, related_name="actions")
    description = models.CharField(max_length=ACTION_MAX_LENGTH, validators=[no_nul])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="agreed_actions")
    due_on = models.DateField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PROPOSED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=500, blank=True, validators=[no_nul])
    history = HistoricalRecords()

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [models.Index(fields=["owner", "state", "due_on"], name="agreed_action_owner")]

    def __str__(self) -> str:
        return f"{self.description[:40]} (due {self.due_on:%d %b %Y})"

    @property
    def is_overdue(self) -> bool:
        return self.state == self.State.OPEN and self.due_on < timezone.localdate()


class Attendance(models.Model):
    """One stretch of one person's time in the meeting: from opening the room to
    closing their last connection to it. Labels are copied when they join."""

    discussion = models.ForeignKey(Discussion, on_delete=models.CASCADE, related_name="attendance")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    display_name = models.CharField(max_length=150)
    role_label = models.CharField(max_length=80, blank=True)
    agency_label = models.CharField(max_length=40, blank=True)
    was_invited = models.BooleanField(default=False)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["discussion", "joined_at", "pk"]

    def __str__(self) -> str:
        return f"{self.display_name} in discussion {self.discussion_id} from {self.joined_at:%H:%M}"


class DiscussionPresence(models.Model):
    """One open live connection to a discussion room (not a record; attendance is)."""

    discussion = models.ForeignKey(Discussion, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"user {self.user_id} in discussion {self.discussion_id}"
