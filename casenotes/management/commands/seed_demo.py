"""Demo data: a Family Safeguarding team, a locality early-help team, an IG officer,
an administrator and three families with notes at every sensitivity.

Idempotent: existing demo records are left as they are. Everything is written
through the actions, so the demo has its history and audit trail like real data.
Refuses to run unless DEBUG is on: demo accounts share a published password.
"""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from casenotes.actions import do_add_person, do_create_case, do_create_note, do_update_plan
from casenotes.models import Case, CaseNote, Person
from teams.actions import do_create_user, do_save_agency, do_save_membership, do_save_team
from teams.models import Agency, Membership, Role, Team

DEMO_PASSWORD = "demo-Safeguarding-2026"

AGENCIES = [
    ("Northfield Children's Services", "Children's Services", Agency.Kind.CHILDRENS_SOCIAL_CARE),
    ("Northfield Mental Health NHS Trust", "Mental health", Agency.Kind.NHS_MENTAL_HEALTH),
    ("Probation Service", "Probation", Agency.Kind.PROBATION),
    ("Safe Homes Domestic Abuse Service", "Domestic abuse", Agency.Kind.DOMESTIC_ABUSE),
    ("Open Door Recovery Service", "Recovery", Agency.Kind.SUBSTANCE_MISUSE),
]
FS_TEAM = "Northfield Family Safeguarding Team"
LOCALITY_TEAM = "Northfield Locality Early Help"

# username, first, last, role, agency short name, team (None: organisation-wide)
PEOPLE = [
    ("social.worker", "Sam", "Patel", Role.SOCIAL_WORKER, "Children's Services", FS_TEAM),
    ("team.manager", "Tara", "Okafor", Role.TEAM_MANAGER, "Children's Services", FS_TEAM),
    ("mental.health", "Mo", "Hughes", Role.MENTAL_HEALTH_PRACTITIONER, "Mental health", FS_TEAM),
    ("da.victim", "Vic", "Reed", Role.DA_VICTIM_WORKER, "Domestic abuse", FS_TEAM),
    ("da.perpetrator", "Pat", "Doyle", Role.DA_PERPETRATOR_WORKER, "Domestic abuse", FS_TEAM),
    ("probation", "Priya", "Shah", Role.PROBATION_OFFICER, "Probation", FS_TEAM),
    ("recovery", "Rob", "Evans", Role.RECOVERY_WORKER, "Recovery", FS_TEAM),
    ("family.support", "Fay", "Morgan", Role.FAMILY_SUPPORT_WORKER, "Children's Services", FS_TEAM),
    ("early.help", "Lee", "Carter", Role.FAMILY_SUPPORT_WORKER, "Children's Services", LOCALITY_TEAM),
    ("locality.manager", "Lina", "Novak", Role.TEAM_MANAGER, "Children's Services", LOCALITY_TEAM),
    ("ig.officer", "Iris", "Grant", Role.IG_OFFICER, "Children's Services", None),
    ("admin", "Adam", "Ward", Role.ADMINISTRATOR, "Children's Services", None),
]

S = CaseNote.Sensitivity
T = CaseNote.NoteType
R = Person.RoleInFamily


def _years_ago(years: int, days: int = 0) -> datetime.date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) - datetime.timedelta(days=days)


FAMILIES = [
    {
        "reference": "FS-24-0117", "family_name": "Ashworth", "team": FS_TEAM,
        "category": Case.Category.CHILD_PROTECTION_PLAN, "lead": "social.worker",
        "people": [
            ("Mia Ashworth", R.CHILD, (7, 40)), ("Leo Ashworth", R.CHILD, (4, 100)),
            ("Kerry Ashworth", R.MOTHER, (29, 10)), ("Dean Carter", R.PARENTS_PARTNER, (33, 200)),
        ],
        "notes": [
            ("social.worker", T.HOME_VISIT, 9, S.STANDARD, True, ["Mia Ashworth", "Leo Ashworth"], [],
             "Announced home visit. Mia and Leo seen together and Mia alone in her room. "
             "Home warm, food in the cupboards. Mia said she feels safe when Dean is out."),
            ("probation", T.PHONE_CALL, 7, S.AGENCY_RESTRICTED, True, ["Dean Carter"], [],
             "Licence conditions reviewed with Dean. Missed one appointment; warning issued. "
             "Risk assessment unchanged pending review."),
            ("mental.health", T.OFFICE_VISIT, 6, S.AGENCY_RESTRICTED, False, ["Kerry Ashworth"], [],
             "Kerry attended clinic. Medication review; mood improving. Discussed support "
             "network and coping plan."),
            ("da.victim", T.DIRECT_WORK, 4, S.SEALED, True, ["Kerry Ashworth"],
             ["social.worker", "team.manager"],
             "Safety planning session. Kerry has a refuge place offered; the address is held "
             "here only. Do not share outside the named readers."),
            ("social.worker", T.MULTI_AGENCY_MEETING, 2, S.STANDARD, False, [], [],
             "Core group: plan reviewed with school, health visitor and probation. Actions "
             "agreed for the next four weeks."),
        ],
        "draft": ("social.worker", T.PHONE_CALL, 0, S.STANDARD,
                  "Call with school about Mia's attendance — to finish after the meeting."),
        "plan": ("social.worker", 21, {
            "worries": "Mia and Leo have heard arguments at home when Dean has been drinking. "
                       "Mia has missed school on Mondays.",
            "strengths": "Kerry gets the children to every health appointment. Mia's "
                         "grandmother collects her from school twice a week.",
            "next_steps": "Social worker to visit every two weeks and see Mia alone.\n"
                          "Probation to review Dean's licence conditions monthly.\n"
                          "School to tell the social worker the same day if Mia is absent.",
            "contingency": "If the children hear or see another incident, a strategy "
                           "discussion will be held the same day.",
        }),
    },
    {
        "reference": "FS-24-0142", "family_name": "Begum", "team": FS_TEAM,
        "category": Case.Category.CHILD_IN_NEED, "lead": "social.worker",
        "people": [
            ("Aisha Begum", R.CHILD, (12, 60)), ("Nasreen Begum", R.MOTHER, (38, 5)),
            ("Imran Begum", R.FATHER, (41, 300)),
        ],
        "notes": [
            ("social.worker", T.PHONE_CALL, 12, S.STANDARD, False, ["Nasreen Begum"], [],
             "Nasreen called to rearrange Thursday's visit; new date agreed."),
            ("recovery", T.OFFICE_VISIT, 5, S.AGENCY_RESTRICTED, True, ["Imran Begum"], [],
             "Imran engaged with the recovery programme; two negative tests this month."),
            ("family.support", T.DIRECT_WORK, 3, S.STANDARD, False, ["Aisha Begum"], [],
             "Worked with Aisha on her worries list. She wants to join the after-school club."),
        ],
    },
    {
        "reference": "EH-25-0031", "family_name": "Cole", "team": LOCALITY_TEAM,
        "category": Case.Category.EARLY_HELP, "lead": "early.help",
        "people": [("Jayden Cole", R.CHILD, (15, 20)), ("Sharon Cole", R.MOTHER, (44, 80))],
        "notes": [
            ("early.help", T.HOME_VISIT, 8, S.STANDARD, False, ["Jayden Cole", "Sharon Cole"], [],
             "Family plan reviewed. School attendance up to 91%. Step-down review next month."),
        ],
    },
]


class Command(BaseCommand):
    help = "Create the demo teams, users and families (idempotent). Development only."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates accounts with a published password: "
                               "it runs only with DEBUG on.")
        users = self._users()
        for family in FAMILIES:
            self._family(family, users)
        self._discussion(users)
        self._print_logins()

    def _users(self) -> dict:
        User = get_user_model()
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            admin = do_create_user(acting_user=None, username="admin", password=DEMO_PASSWORD,
                                   first_name="Adam", last_name="Ward", is_superuser=True)
        agencies = {}
        for name, short, kind in AGENCIES:
            agency = Agency.objects.filter(name=name).first()
            if agency is None:
                agency = do_save_agency(acting_user=admin,
                                        agency=Agency(name=name, short_name=short, kind=kind))
            agencies[short] = agency
        teams = {}
        for name, kind in [(FS_TEAM, Team.Kind.FAMILY_SAFEGUARDING),
                           (LOCALITY_TEAM, Team.Kind.LOCALITY)]:
            team = Team.objects.filter(name=name).first()
            if team is None:
                team = do_save_team(acting_user=admin, team=Team(name=name, kind=kind))
            teams[name] = team
        users = {}
        start = timezone.localdate() - datetime.timedelta(days=400)
        for username, first, last, role, agency, team in PEOPLE:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = do_create_user(acting_user=admin, username=username, password=DEMO_PASSWORD,
                                      first_name=first, last_name=last,
                                      email=f"{username}@northfield.example")
            if not Membership.objects.filter(user=user, role=role).exists():
                do_save_membership(acting_user=admin, membership=Membership(
                    user=user, team=teams[team] if team else None, agency=agencies[agency],
                    role=role, start_date=start))
            users[username] = user
        return users

    def _family(self, family: dict, users: dict) -> None:
        if Case.objects.filter(reference=family["reference"]).exists():
            return
        team = Team.objects.get(name=family["team"])
        manager = users["team.manager" if family["team"] == FS_TEAM else "locality.manager"]
        case = do_create_case(
            acting_user=manager, reference=family["reference"],
            family_name=family["family_name"], category=family["category"], team=team,
            lead_practitioner=users[family["lead"]],
            opened_on=timezone.localdate() - datetime.timedelta(days=120),
        )
        people = {}
        for name, role, (years, days) in family["people"]:
            people[name] = do_add_person(acting_user=manager, case=case, full_name=name,
                                         role_in_family=role,
                                         date_of_birth=_years_ago(years, days))
        now = timezone.now().replace(second=0, microsecond=0)
        for author, kind, days_ago, sensitivity, significant, about, readers, body in family["notes"]:
            do_create_note(
                acting_user=users[author], case=case, note_type=kind,
                occurred_at=now - datetime.timedelta(days=days_ago, hours=3), body=body,
                sensitivity=sensitivity, is_significant=significant,
                people=[people[p] for p in about], readers=[users[r] for r in readers],
                finalise=True,
            )
        if "plan" in family:
            author, review_in_days, sections = family["plan"]
            do_update_plan(acting_user=users[author], case=case, based_on=0, sections=sections,
                           review_on=timezone.localdate() + datetime.timedelta(days=review_in_days))
        if "draft" in family:
            author, kind, days_ago, sensitivity, body = family["draft"]
            do_create_note(acting_user=users[author], case=case, note_type=kind,
                           occurred_at=now - datetime.timedelta(days=days_ago, hours=1),
                           body=body, sensitivity=sensitivity)

    def _discussion(self, users: dict) -> None:
        """The FS team's next group case discussion, its open cases on the agenda and the
        whole team invited (the team manager starts it from the team page)."""
        from discussions.actions import do_schedule_discussion

        team = Team.objects.get(name=FS_TEAM)
        if team.discussions.exists():
            return
        tomorrow = timezone.localtime() + datetime.timedelta(days=1)
        do_schedule_discussion(
            acting_user=users["team.manager"], team=team, title="Weekly group case discussion",
            scheduled_for=tomorrow.replace(hour=10, minute=0, second=0, microsecond=0),
            cases=list(Case.objects.filter(allocated_team=team, status=Case.Status.OPEN)
                       .order_by("reference")),
            invitees=[users[u] for u, *_rest, t in PEOPLE if t == FS_TEAM])

    def _print_logins(self) -> None:
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at http://127.0.0.1:8000 "
                                             f"with password: {DEMO_PASSWORD}"))
        for username, first, last, role, agency, team in PEOPLE:
            where = team or "organisation-wide"
            self.stdout.write(f"  {username:<17} {first} {last} — {role.label}, {agency} ({where})")
