"""The access log: one row for every read, write, denial and sign-in event.

Rows are append-only: database triggers (see `audit.db`) refuse UPDATE and DELETE
(and TRUNCATE on PostgreSQL). Actors are kept as an id plus a label snapshot rather
than a foreign key, so a row outlives the account it names and nothing ever has to
rewrite it.
"""

from django.db import models
from django.utils import timezone


class AuditAction(models.IntegerChoices):
    """What happened. Numbered in ranges; never renumber an existing member."""

    # 100–199: signing in and out
    LOGIN = 100, "Signed in"
    LOGOUT = 101, "Signed out"
    LOGIN_FAILED = 102, "Sign-in failed"
    LOGIN_LOCKED_OUT = 103, "Account locked after failed sign-ins"
    TWO_FACTOR_VERIFIED = 104, "Second factor verified"
    TWO_FACTOR_FAILED = 105, "Second factor refused"
    TWO_FACTOR_ENROLLED = 106, "Two-factor sign-in set up"

    # 200–299: reads of case data
    CASELOAD_VIEWED = 200, "Caseload viewed"
    CASE_VIEWED = 201, "Case viewed"
    CASE_ACCESS_VIEWED = 206, "Case access list viewed"
    SEARCHED = 207, "Search results viewed"
    NOTE_HISTORY_VIEWED = 208, "Note history viewed"
    BREAK_GLASS_QUEUE_VIEWED = 209, "Emergency access queue viewed"
    TRANSFERS_VIEWED = 210, "Transfer requests viewed"
    CASE_EXPORTED = 211, "Case record exported"
    LIVE_DELIVERED = 212, "Live note delivered"
    CASE_HISTORY_VIEWED = 213, "Case history viewed"
    DISCUSSION_CASE_VIEWED = 214, "Case record viewed in a group case discussion"
    ACTIONS_VIEWED = 215, "Own actions viewed"
    CASE_FORM_VIEWED = 216, "Form naming a case opened"
    CHRONOLOGY_VIEWED = 217, "Chronology viewed"
    ADMIN_CASE_DATA_VIEWED = 218, "Case data viewed in the administration site"
    PLAN_VIEWED = 219, "Family plan viewed"
    NOTE_VIEWED = 202, "Note viewed"
    TEAM_VIEWED = 203, "Team viewed"
    NOTE_FORM_VIEWED = 204, "Note form opened"
    LIVE_JOINED = 205, "Live case room joined"

    # 300–399: writes to notes
    NOTE_CREATED = 300, "Note created"
    NOTE_UPDATED = 301, "Draft note updated"
    NOTE_FINALISED = 302, "Note finalised"
    ADDENDUM_ADDED = 303, "Addendum added"
    NOTE_WRITE_REFUSED = 304, "Note change refused"

    # 400–499: writes to cases and people
    CASE_CREATED = 400, "Case created"
    CASE_ALLOCATED = 401, "Case allocated"
    CASE_CLOSED = 402, "Case closed"
    PERSON_ADDED = 403, "Person added to case"
    PERSON_UPDATED = 404, "Person details changed"
    LEGAL_BASIS_CHANGED = 405, "Legal basis changed"
    PLAN_UPDATED = 406, "Family plan changed"

    # 500–599: organisation, membership and access
    AGENCY_SAVED = 500, "Agency saved"
    TEAM_SAVED = 501, "Team saved"
    MEMBERSHIP_SAVED = 502, "Membership saved"
    MEMBERSHIP_ENDED = 503, "Membership ended"
    USER_CREATED = 504, "Account created"
    USER_SAVED = 505, "Account changed"
    SESSIONS_ENDED = 506, "Sessions ended"
    TWO_FACTOR_RESET = 507, "Two-factor sign-in reset"
    PASSWORD_CHANGED = 508, "Password changed"
    PERMISSION_GRANTED = 510, "Permission granted"
    PERMISSION_REVOKED = 511, "Permission revoked"
    LEAD_ALLOCATED = 512, "Lead practitioner allocated"
    KEYWORKER_ADDED = 513, "Keyworker added"
    KEYWORKER_REMOVED = 514, "Keyworker removed"
    TRANSFER_REQUESTED = 520, "Transfer requested"
    TRANSFER_ACCEPTED = 521, "Transfer accepted"
    TRANSFER_REJECTED = 522, "Transfer rejected"
    TRANSFER_WITHDRAWN = 523, "Transfer withdrawn"
    SEALED_SHARED = 530, "Sealed note shared"
    SEALED_UNSHARED = 531, "Sealed note unshared"
    BREAK_GLASS_OPENED = 540, "Emergency access opened"

    BREAK_GLASS_REVIEWED = 541, "Emergency access reviewed"
    BREAK_GLASS_ENDED = 542, "Emergency access ended early"

    # 600–699: refusals of access
    ACCESS_DENIED = 600, "Access denied"

    # 700–799: reading the audit trail (information governance)
    AUDIT_SEARCHED = 700, "Access log searched"
    AUDIT_EXPORTED = 701, "Access log exported"
    AUDIT_REPORT_VIEWED = 702, "Access report viewed"
    ALERTS_VIEWED = 703, "Access alerts viewed"
    SAR_PRODUCED = 704, "Subject access request produced"
    AUDIT_VERIFIED = 705, "Access log verified"
    AUDIT_HEAD_EXPORTED = 706, "Access log head exported"

    # 800–899: group case discussions
    DISCUSSION_SCHEDULED = 800, "Group case discussion scheduled"
    DISCUSSION_CHANGED = 801, "Group case discussion agenda changed"
    DISCUSSION_CANCELLED = 802, "Group case discussion cancelled"
    DISCUSSION_STARTED = 803, "Group case discussion started"
    DISCUSSION_MOVED = 804, "Group case discussion moved to an agenda item"
    DISCUSSION_JOINED = 805, "Group case discussion joined"
    DISCUSSION_LEFT = 806, "Group case discussion left"
    SECTION_EDITED = 807, "Discussion record section edited"
    SECTION_TEXT_KEPT = 808, "Discussion text kept beside a section (not merged)"
    KEPT_TEXT_RESOLVED = 809, "Kept discussion text resolved"
    ACTION_AGREED = 810, "Action agreed"
    ACTION_REMOVED = 811, "Action removed"
    DISCUSSION_SIGNED_OFF = 812, "Group case discussion signed off"
    ACTION_COMPLETED = 813, "Action completed"


class Outcome(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    DENIED = "denied", "Denied"


class AuditEvent(models.Model):
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Searched by person and by case through the composite indexes below, which begin
    # with these columns: an index of either alone would only be written, never chosen.
    actor_id = models.PositiveBigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    agency_label = models.CharField(max_length=120, blank=True)
    role_label = models.CharField(max_length=80, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    action = models.PositiveSmallIntegerField(choices=AuditAction.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.ALLOWED)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    case_id = models.PositiveBigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    # Set on every entry made under emergency access: the CaseGrant it used.
    break_glass_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    # The hash chain (audit.chain): the previous entry's hash, and SHA-256 over that and
    # this entry's content.
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    entry_hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["action", "occurred_at"]),
            # The IG searches by person and by case, newest first: without these the
            # planner walks the whole time index for someone with few entries.
            models.Index(fields=["actor_id", "-occurred_at", "-id"], name="audit_actor_newest"),
            models.Index(fields=["case_id", "-occurred_at", "-id"], name="audit_case_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.get_action_display()}"
