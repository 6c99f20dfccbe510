"""A realistic world for the tests, built only through the actions.

Nothing here calls `Model.objects.create` for a domain model: every agency, team,
account, membership, case, person and note is made by the same action a view, the
admin or the seed would call, so the history and audit rows the tests inspect are
the ones production writes.

The world:
- a bootstrap superuser (`do_create_user(acting_user=None, is_superuser=True)`), who
  then creates everything organisational;
- five agencies (children's social care, NHS mental health, probation, a domestic-abuse
  service, a substance-misuse service);
- a Family Safeguarding team with TWO users of every case role, and two IG officers and
  two administrators with organisation-wide memberships (team=None) — `world.pair(role)`;
- a locality team with one practitioner of every case role (so each agency is on it);
- `world.case`, allocated to the FS team and created by its team manager, with a family
  of four; `world.other_case`, allocated to the locality team by its manager, with two.

`world.note(...)` makes a note at any sensitivity and state through `do_create_note`.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass, field

from django.utils import timezone

from casenotes.actions import do_add_person, do_create_case, do_create_note
from casenotes.models import Case, CaseNote, Person
from teams.actions import do_create_user, do_save_agency, do_save_membership, do_save_team
from teams.models import CASE_ROLES, Agency, Membership, Role, Team

PASSWORD = "a-long-test-passphrase-42"

Kind = Agency.Kind

AGENCIES: dict[str, tuple[str, str]] = {
    Kind.CHILDRENS_SOCIAL_CARE: ("Hertfordshire Children's Services", "Children's services"),
    Kind.NHS_MENTAL_HEALTH: ("Hertfordshire Partnership NHS Foundation Trust", "NHS mental health"),
    Kind.PROBATION: ("Probation Service (East of England)", "Probation"),
    Kind.DOMESTIC_ABUSE: ("Herts Domestic Abuse Service", "DA service"),
    Kind.SUBSTANCE_MISUSE: ("Change Grow Live Hertfordshire", "Substance misuse"),
}

#: The employer of each role.
ROLE_AGENCY: dict[Role, str] = {
    Role.SOCIAL_WORKER: Kind.CHILDRENS_SOCIAL_CARE,
    Role.TEAM_MANAGER: Kind.CHILDRENS_SOCIAL_CARE,
    Role.FAMILY_SUPPORT_WORKER: Kind.CHILDRENS_SOCIAL_CARE,
    Role.MENTAL_HEALTH_PRACTITIONER: Kind.NHS_MENTAL_HEALTH,
    Role.PROBATION_OFFICER: Kind.PROBATION,
    Role.DA_VICTIM_WORKER: Kind.DOMESTIC_ABUSE,
    Role.DA_PERPETRATOR_WORKER: Kind.DOMESTIC_ABUSE,
    Role.RECOVERY_WORKER: Kind.SUBSTANCE_MISUSE,
    Role.IG_OFFICER: Kind.CHILDRENS_SOCIAL_CARE,
    Role.ADMINISTRATOR: Kind.CHILDRENS_SOCIAL_CARE,
}

ORG_ROLES = (Role.IG_OFFICER, Role.ADMINISTRATOR)

_NAMES = itertools.cycle([
    ("Amara", "Okafor"), ("Ben", "Whitfield"), ("Chloe", "Nandra"), ("Dev", "Patel"),
    ("Eilidh", "Ross"), ("Femi", "Adeyemi"), ("Grace", "Lindqvist"), ("Hassan", "Qureshi"),
    ("Imogen", "Hale"), ("Jonah", "Brennan"), ("Kemi", "Balogun"), ("Liam", "Doherty"),
    ("Maya", "Kowalski"), ("Nadia", "Rahman"), ("Owen", "Pryce"), ("Priya", "Shah"),
    ("Quentin", "Marsh"), ("Rosa", "Delgado"), ("Sam", "Achterberg"), ("Tara", "Quinn"),
    ("Usha", "Menon"), ("Victor", "Ibe"), ("Wendy", "Carr"), ("Yusuf", "Demir"),
    ("Zara", "Holt"), ("Aled", "Morgan"), ("Bea", "Fontaine"), ("Cal", "Mensah"),
])


@dataclass
class World:
    bootstrap_admin: object
    agencies: dict[str, Agency]
    fs_team: Team
    locality_team: Team
    fs_users: dict[Role, tuple]            # two per role (org-wide roles included)
    locality_users: dict[Role, object]     # one per case role
    memberships: dict[int, Membership]     # user pk -> their membership
    case: Case
    other_case: Case
    people: dict[str, Person]
    other_people: dict[str, Person]
    _notes: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- people -----------------------------------------------------------------
    def pair(self, role: Role) -> tuple:
        """The two users of `role` (the FS team's, or the organisation-wide ones)."""
        return self.fs_users[Role(role)]

    def user(self, role: Role, index: int = 0):
        return self.pair(role)[index]

    @property
    def team_manager(self):
        return self.user(Role.TEAM_MANAGER)

    @property
    def social_worker(self):
        return self.user(Role.SOCIAL_WORKER)

    def agency_of(self, user) -> Agency:
        return self.memberships[user.pk].agency

    def fs_members(self) -> list:
        return [u for role in sorted(CASE_ROLES) for u in self.fs_users[role]]

    def locality_members(self) -> list:
        return [self.locality_users[role] for role in sorted(CASE_ROLES)]

    def members_of(self, case: Case) -> list:
        return self.fs_members() if case.pk == self.case.pk else self.locality_members()

    def colleague(self, viewer, case: Case, *, same_agency: bool, exclude=()):
        """A member of `case`'s team, not `viewer` (nor anyone in `exclude`), whose agency
        is (or is not) the viewer's. Prefers the viewer's own-role twin when same_agency."""
        viewer_agency = self.agency_of(viewer).pk
        candidates = [
            u for u in self.members_of(case)
            if u.pk != viewer.pk and u not in exclude
            and (self.agency_of(u).pk == viewer_agency) == same_agency
        ]
        viewer_role = self.memberships[viewer.pk].role
        candidates.sort(key=lambda u: self.memberships[u.pk].role != viewer_role)
        if not candidates:
            raise LookupError(f"no colleague of {viewer} on {case} (same_agency={same_agency})")
        return candidates[0]

    # --- notes ------------------------------------------------------------------
    def note(
        self, author, *, case: Case | None = None,
        sensitivity: str = CaseNote.Sensitivity.STANDARD, final: bool = True,
        readers=(), people=(), body: str | None = None,
        note_type: str = CaseNote.NoteType.HOME_VISIT, occurred_at=None,
        is_significant: bool = False,
    ) -> CaseNote:
        """A note by `author` through do_create_note (finalised unless final=False)."""
        number = next(self._notes)
        return do_create_note(
            acting_user=author, case=case or self.case, note_type=note_type,
            occurred_at=occurred_at or timezone.now() - datetime.timedelta(hours=number),
            body=body if body is not None else (
                f"Visit {number}: children seen together and alone; home warm, food in cupboards."
            ),
            sensitivity=sensitivity, is_significant=is_significant,
            people=people, readers=readers, finalise=final,
        )

    def standard_note(self, author, **kw) -> CaseNote:
        return self.note(author, sensitivity=CaseNote.Sensitivity.STANDARD, **kw)

    def restricted_note(self, author, **kw) -> CaseNote:
        return self.note(author, sensitivity=CaseNote.Sensitivity.AGENCY_RESTRICTED, **kw)

    def sealed_note(self, author, readers=(), **kw) -> CaseNote:
        return self.note(author, sensitivity=CaseNote.Sensitivity.SEALED, readers=readers, **kw)

    def draft(self, author, **kw) -> CaseNote:
        return self.note(author, final=False, **kw)


def _create_user(acting_user, role: Role, *, is_superuser: bool = False):
    first, last = next(_NAMES)
    stem = f"{first}.{last}".lower()
    # Usernames must be unique however many worlds one test session builds.
    username = f"{stem}.{next(_user_numbers)}"
    return do_create_user(
        acting_user=acting_user, username=username, password=PASSWORD,
        first_name=first, last_name=last, email=f"{stem}@example.gov.uk",
        is_superuser=is_superuser,
    )


_user_numbers = itertools.count(1)


def create_member(
    acting_user, *, role: Role, team: Team | None, agency: Agency,
    start_date: datetime.date | None = None, end_date: datetime.date | None = None,
):
    """A new account with one membership, both through the actions."""
    user = _create_user(acting_user, role)
    membership = do_save_membership(acting_user=acting_user, membership=Membership(
        user=user, team=team, agency=agency, role=role,
        start_date=start_date or timezone.localdate() - datetime.timedelta(days=400),
        end_date=end_date,
    ))
    return user, membership


def build_world() -> World:
    bootstrap = do_create_user(
        acting_user=None, username=f"bootstrap.admin.{next(_user_numbers)}", password=PASSWORD,
        first_name="Bootstrap", last_name="Administrator", is_superuser=True,
    )
    agencies = {
        kind: do_save_agency(acting_user=bootstrap, agency=Agency(
            name=name, short_name=short, kind=kind))
        for kind, (name, short) in AGENCIES.items()
    }
    fs_team = do_save_team(acting_user=bootstrap, team=Team(
        name="Family Safeguarding Team North", kind=Team.Kind.FAMILY_SAFEGUARDING))
    locality_team = do_save_team(acting_user=bootstrap, team=Team(
        name="Stevenage Locality Early Help", kind=Team.Kind.LOCALITY))

    memberships: dict[int, Membership] = {}
    fs_users: dict[Role, tuple] = {}
    for role in Role:
        team = None if role in ORG_ROLES else fs_team
        pair = []
        for _ in range(2):
            user, membership = create_member(
                bootstrap, role=role, team=team, agency=agencies[ROLE_AGENCY[role]])
            memberships[user.pk] = membership
            pair.append(user)
        fs_users[role] = tuple(pair)
    locality_users: dict[Role, object] = {}
    for role in sorted(CASE_ROLES):
        user, membership = create_member(
            bootstrap, role=role, team=locality_team, agency=agencies[ROLE_AGENCY[role]])
        memberships[user.pk] = membership
        locality_users[role] = user

    fs_manager = fs_users[Role.TEAM_MANAGER][0]
    lead = fs_users[Role.SOCIAL_WORKER][0]
    case = do_create_case(
        acting_user=fs_manager, reference="FS-2025-0417", family_name="Harper",
        category=Case.Category.CHILD_PROTECTION_PLAN, team=fs_team, lead_practitioner=lead,
        opened_on=timezone.localdate() - datetime.timedelta(days=90),
    )
    R = Person.RoleInFamily
    people = {
        key: do_add_person(acting_user=lead, case=case, full_name=name, role_in_family=role,
                           date_of_birth=dob)
        for key, name, role, dob in [
            ("ellie", "Ellie Harper", R.CHILD, datetime.date(2016, 3, 14)),
            ("tom", "Tom Harper", R.CHILD, datetime.date(2019, 11, 2)),
            ("kayleigh", "Kayleigh Harper", R.MOTHER, datetime.date(1991, 6, 30)),
            ("dean", "Dean Walsh", R.PARENTS_PARTNER, datetime.date(1988, 1, 9)),
        ]
    }
    locality_manager = locality_users[Role.TEAM_MANAGER]
    other_case = do_create_case(
        acting_user=locality_manager, reference="EH-2025-0102", family_name="Osei",
        category=Case.Category.EARLY_HELP, team=locality_team,
        lead_practitioner=locality_users[Role.FAMILY_SUPPORT_WORKER],
        opened_on=timezone.localdate() - datetime.timedelta(days=30),
    )
    other_people = {
        key: do_add_person(acting_user=locality_manager, case=other_case, full_name=name,
                           role_in_family=role, date_of_birth=dob)
        for key, name, role, dob in [
            ("kwame", "Kwame Osei", R.CHILD, datetime.date(2014, 8, 21)),
            ("abena", "Abena Osei", R.MOTHER, datetime.date(1985, 2, 3)),
        ]
    }
    return World(
        bootstrap_admin=bootstrap, agencies=agencies, fs_team=fs_team,
        locality_team=locality_team, fs_users=fs_users, locality_users=locality_users,
        memberships=memberships, case=case, other_case=other_case, people=people,
        other_people=other_people,
    )
