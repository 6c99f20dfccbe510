"""Agencies, teams and who works in them.

A Membership is the dated link between a person's account, a team and the agency
that employs them; the permission policy reads it at check time, so a membership
that has ended grants nothing from that moment on.
"""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history import register
from simple_history.models import HistoricalRecords


class Agency(models.Model):
    class Kind(models.TextChoices):
        CHILDRENS_SOCIAL_CARE = "childrens_social_care", "Children's social care"
        NHS_MENTAL_HEALTH = "nhs_mental_health", "NHS mental health"
        PROBATION = "probation", "Probation"
        DOMESTIC_ABUSE = "domestic_abuse", "Domestic-abuse service"
        SUBSTANCE_MISUSE = "substance_misuse", "Substance-misuse service"
        OTHER = "other", "Other"

    name = models.CharField(max_length=120, unique=True)
    short_name = models.CharField(
        max_length=40, help_text="Shown on placeholders, e.g. 'Probation'."
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "agencies"

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    class Kind(models.TextChoices):
        FAMILY_SAFEGUARDING = "family_safeguarding", "Family safeguarding"
        LOCALITY = "locality", "Locality / early help"
        HUB = "hub", "Hub"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=40, choices=Kind.choices)
    is_active = models.BooleanField(default=True)
    # Holds the team's object permissions on the cases allocated to it. Users are
    # not put in this group: membership (with its dates) is the link, read at check time.
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team", editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    SOCIAL_WORKER = "social_worker", "Social worker"
    TEAM_MANAGER = "team_manager", "Team manager"
    MENTAL_HEALTH_PRACTITIONER = "mental_health_practitioner", "Mental-health practitioner"
    DA_VICTIM_WORKER = "da_victim_worker", "Domestic-abuse victim worker"
    DA_PERPETRATOR_WORKER = "da_perpetrator_worker", "Domestic-abuse perpetrator worker"
    PROBATION_OFFICER = "probation_officer", "Probation officer"
    RECOVERY_WORKER = "recovery_worker", "Recovery worker"
    FAMILY_SUPPORT_WORKER = "family_support_worker", "Family support worker"
    IG_OFFICER = "ig_officer", "Information-governance officer"
    ADMINISTRATOR = "administrator", "Administrator"


#: Roles that work cases inside a team. The others are organisation-wide and grant
#: no case access.
CASE_ROLES = frozenset(Role) - {Role.IG_OFFICER, Role.ADMINISTRATOR}


class MembershipQuerySet(models.QuerySet):
    def active(self, on: datetime.date | None = None):
        on = on or timezone.localdate()
        return self.filter(
            Q(start_date__lte=on) & (Q(end_date__isnull=True) | Q(end_date__gt=on)),
            user__is_active=True,
        )

    def case_working(self, on: datetime.date | None = None):
        """Active memberships, in active teams, with a role that works cases."""
        return self.active(on).filter(role__in=CASE_ROLES, team__isnull=False, team__is_active=True)


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, related_name="memberships", null=True, blank=True,
        help_text="Empty for organisation-wide roles (IG officer, administrator).",
    )
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=40, choices=Role.choices)
    start_date = models.DateField(default=timezone.localdate)
    end_date = models.DateField(
        null=True, blank=True,
        help_text="The first day they no longer work here. Empty while the membership runs.",
    )
    history = HistoricalRecords()

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["team__name", "role", "user__last_name"]

    def __str__(self) -> str:
        where = self.team or "organisation"
        return f"{self.user} — {self.get_role_display()}, {self.agency.short_name} ({where})"

    def clean(self) -> None:
        errors = {}
        if self.role in CASE_ROLES and self.team_id is None:
            errors["team"] = "Choose the team this practitioner works in."
        if self.role not in CASE_ROLES and self.team_id is not None:
            errors["team"] = "IG officers and administrators are not members of a case team."
        if self.end_date and self.start_date and self.end_date < self.start_date:
            errors["end_date"] = "The end date must be on or after the start date."
        if errors:
            raise ValidationError(errors)

    @property
    def works_cases(self) -> bool:
        """For a membership in force: does it work cases? (MembershipQuerySet.case_working
        in Python, for memberships already loaded with their team.)"""
        return self.role in CASE_ROLES and self.team is not None and self.team.is_active

    def is_active_on(self, day: datetime.date) -> bool:
        return self.start_date <= day and (self.end_date is None or day < self.end_date)


# Account history, without the password hash or login times.
register(
    get_user_model(),
    app="teams",
    excluded_fields=["password", "last_login"],
)
