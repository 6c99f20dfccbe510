"""Caseload and search at 100,000 cases: page time for one practitioner.

    .venv/bin/python bench/caseload_search.py                # 100,000 cases, 200 requests a page
    .venv/bin/python bench/caseload_search.py --explain      # and EXPLAIN ANALYZE the slowest query
    .venv/bin/python bench/caseload_search.py --help         # sizes, counts, addresses

One social worker works on 50 open cases (their team's) among 100,000 cases of other
teams. The script times, in this process through django.test.Client (signed in with
`force_login`, the whole middleware stack, template rendering and the audit entry each
page writes), N requests of each of:

- the caseload page, GET / ;
- a search by family name, GET /search/?q=<the surname of one of their families>: it
  matches a few of their cases and a few hundred cases of other teams (which come back
  as emergency-access candidates);
- a search by case reference, GET /search/?q=<one of their references>.

A warm-up (20 requests by default) is discarded. It prints p50, p95 and max page time in milliseconds, the SQL
statements each page runs, the page's slowest statement, and PASS/FAIL against the
target: p95 < 100 ms per page on PostgreSQL. Exit status 0 when every page meets it, 1
when one does not, 2 when it could not run.

Setup, all on loopback and all removed afterwards: a scratch PostgreSQL database
`bench_caseload` (dropped first if an earlier run left it), migrated by `manage.py
migrate` in a subprocess (DJANGO_SETTINGS_MODULE=workspace.settings.test). The
practitioner's agency, team, colleagues, memberships, 50 cases, their people (2-3 a
case) and a few notes are written through the real actions (teams.actions,
casenotes.actions), so their permission, history and audit rows are the product's. The
100,000 other cases are benchmark scaffolding bulk-loaded with COPY: 1,000 other teams
(groups, four members each), each case with 2-3 people, notes, and the
CaseGroupObjectPermission rows the product would have written (view and contribute for
its team; 2% with a hand-over row for a previous team; 1% with a keyworker grant);
30% of them closed. Then ANALYZE. No Redis is needed (the in-memory channel layer).

Every wait is bounded: PostgreSQL statements time out (60 s), the migration has a time
limit, each page has at most --page-seconds (45) for its warm-up and timed requests (a
page too slow for all N is reported from the requests that fitted, and the table says
how many), and the whole run has a deadline (--budget, 600 s). The scratch database is dropped at
the end, on error and on SIGTERM too. See docs/performance.md for what it measured.
"""

import datetime
import random
import sys
import time

from _common import (
    PASSWORD,
    BenchError,
    Deadline,
    add_pg_admin_url,
    describe_machine,
    explain,
    log,
    make_parser,
)
from _pages import (
    Interrupted,
    analyze,
    copy_rows,
    jit_setting,
    measure_page,
    next_id,
    scratch_django,
    timing_line,
)

DB_NAME = "bench_caseload"
TARGET_P95_MS = 100.0
OTHER_TEAM_MEMBERS = 4

#: 20 x 12 = 240 family names; each appears on about 400 of 100,000 cases.
_STEMS = ["Ash", "Black", "Brad", "Carl", "Dun", "Eller", "Fair", "Green", "Hart", "Kings",
          "Lang", "Mar", "New", "Oak", "Pem", "Ravens", "Shel", "Thorn", "Wad", "Whit"]
_ENDS = ["ley", "ton", "worth", "by", "field", "ham", "wood", "well", "more", "ford", "shaw",
         "bury"]
SURNAMES = [stem + end for stem in _STEMS for end in _ENDS]
CHILD_NAMES = ["Ava", "Leo", "Mia", "Noah", "Isla", "Alfie", "Ella", "Oscar", "Ruby", "Jack",
               "Freya", "Harry", "Lily", "Theo", "Poppy", "Arthur", "Evie", "Finley", "Ivy",
               "Jacob", "Rosie", "Max", "Millie", "Zain", "Aisha", "Kai", "Amelia", "Ravi"]
ADULT_NAMES = ["Sarah", "James", "Emma", "Daniel", "Laura", "Craig", "Kelly", "Lee", "Gemma",
               "Wayne", "Hayley", "Ryan", "Stacey", "Dean", "Natalie", "Marcus", "Joanne",
               "Tariq", "Agnieszka", "Kwame", "Shauna", "Paul", "Leanne", "Darren"]


# --- the practitioner's world, through the actions -----------------------------------

def build_practitioner(my_cases: int, rng: random.Random) -> dict:
    """The practitioner, their team and its cases, written as the product writes them."""
    from django.utils import timezone

    from casenotes.actions import do_add_person, do_create_case, do_create_note
    from casenotes.models import Case, CaseNote, Person
    from teams.actions import do_create_user, do_save_agency, do_save_membership, do_save_team
    from teams.models import Agency, Membership, Role, Team

    admin = do_create_user(acting_user=None, username="bench.admin", password=PASSWORD,
                           first_name="Bench", last_name="Administrator", is_superuser=True)
    agencies = {
        kind: do_save_agency(acting_user=admin, agency=Agency(name=name, short_name=short, kind=kind))
        for kind, name, short in [
            (Agency.Kind.CHILDRENS_SOCIAL_CARE, "Bench Children's Services", "Children's services"),
            (Agency.Kind.NHS_MENTAL_HEALTH, "Bench NHS Trust", "NHS mental health"),
            (Agency.Kind.PROBATION, "Bench Probation Service", "Probation"),
            (Agency.Kind.DOMESTIC_ABUSE, "Bench DA Service", "DA service"),
            (Agency.Kind.SUBSTANCE_MISUSE, "Bench Recovery Service", "Substance misuse"),
        ]
    }
    team = do_save_team(acting_user=admin, team=Team(name="Bench Family Safeguarding Team",
                                                     kind=Team.Kind.FAMILY_SAFEGUARDING))
    start = timezone.localdate() - datetime.timedelta(days=400)
    people = {}
    for username, first, last, role, kind in [
        ("bench.manager", "Morgan", "Hale", Role.TEAM_MANAGER, Agency.Kind.CHILDRENS_SOCIAL_CARE),
        ("bench.worker", "Sam", "Okoro", Role.SOCIAL_WORKER, Agency.Kind.CHILDRENS_SOCIAL_CARE),
        ("bench.mh", "Priya", "Lund", Role.MENTAL_HEALTH_PRACTITIONER, Agency.Kind.NHS_MENTAL_HEALTH),
        ("bench.probation", "Owen", "Reid", Role.PROBATION_OFFICER, Agency.Kind.PROBATION),
    ]:
        user = do_create_user(acting_user=admin, username=username, password=PASSWORD,
                              first_name=first, last_name=last)
        do_save_membership(acting_user=admin, membership=Membership(
            user=user, team=team, agency=agencies[kind], role=role, start_date=start))
        people[role] = user
    manager, worker = people[Role.TEAM_MANAGER], people[Role.SOCIAL_WORKER]

    references, surnames = [], []
    now = timezone.now()
    R = Person.RoleInFamily
    for i in range(my_cases):
        surname = SURNAMES[(i * 7) % len(SURNAMES)]
        case = do_create_case(
            acting_user=manager, reference=f"FS-25-{i + 1:05d}", family_name=surname,
            category=rng.choice(Case.Category.values), team=team,
            lead_practitioner=worker if i % 5 else None,
            opened_on=timezone.localdate() - datetime.timedelta(days=rng.randint(10, 700)),
        )
        references.append(case.reference)
        surnames.append(surname)
        members = [(R.MOTHER, rng.choice(ADULT_NAMES), _dob(rng, 20, 45))]
        members += [(R.CHILD, rng.choice(CHILD_NAMES), _dob(rng, 0, 17))
                    for _ in range(rng.randint(1, 2))]
        for role, first, born in members:
            do_add_person(acting_user=manager, case=case, full_name=f"{first} {surname}",
                          role_in_family=role, date_of_birth=born)
        for n in range(i % 3):  # 0-2 notes: some cases with activity, some without
            do_create_note(acting_user=worker, case=case, note_type=CaseNote.NoteType.HOME_VISIT,
                           occurred_at=now - datetime.timedelta(days=n + 1, hours=i),
                           body=f"Home visit {n + 1}: children seen together and alone.",
                           sensitivity=CaseNote.Sensitivity.STANDARD, finalise=True)
    return {"user": worker, "team": team, "agencies": agencies, "references": references,
            "surnames": surnames}


def _dob(rng: random.Random, youngest: int, oldest: int) -> datetime.date:
    return datetime.date.today() - datetime.timedelta(days=rng.randint(youngest * 365 + 30,
                                                                       oldest * 365 + 300))


# --- the other 100,000 cases: benchmark scaffolding -----------------------------------

def load_filler(cases: int, agencies: dict, rng: random.Random, deadline: Deadline) -> dict:
    """Other teams with their own members, `cases` cases allocated to them with 2-3 people
    each, notes, and the permission rows the actions would have written."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db import connection, transaction
    from django.utils import timezone

    from casenotes.models import (
        Case,
        CaseGrant,
        CaseGroupObjectPermission,
        CaseNote,
        CaseUserObjectPermission,
        Person,
    )
    from teams.models import Agency, Membership, Role, Team

    User = get_user_model()
    teams_count = max(1, cases // 100)
    now = timezone.now()
    today = timezone.localdate()
    perms = {p.codename: p.pk for p in Permission.objects.filter(
        content_type__app_label="casenotes", codename__in=("view_case", "contribute_to_case"))}
    team_roles = [(Role.TEAM_MANAGER, Agency.Kind.CHILDRENS_SOCIAL_CARE),
                  (Role.SOCIAL_WORKER, Agency.Kind.CHILDRENS_SOCIAL_CARE),
                  (Role.MENTAL_HEALTH_PRACTITIONER, Agency.Kind.NHS_MENTAL_HEALTH),
                  (Role.PROBATION_OFFICER, Agency.Kind.PROBATION)][:OTHER_TEAM_MEMBERS]
    counts = {}
    with transaction.atomic():
        groups = Group.objects.bulk_create(
            [Group(name=f"bench filler group {t}") for t in range(teams_count)])
        teams = Team.objects.bulk_create(
            [Team(name=f"Bench filler team {t:04d}", kind=Team.Kind.LOCALITY if t % 3 else
                  Team.Kind.FAMILY_SAFEGUARDING, group=g) for t, g in enumerate(groups)])
        users = User.objects.bulk_create(
            [User(username=f"filler.{t}.{r}", password="!", first_name=ADULT_NAMES[(t + r) % 24],
                  last_name=SURNAMES[(t * 3 + r) % len(SURNAMES)])
             for t in range(teams_count) for r in range(len(team_roles))], batch_size=2000)
        Membership.objects.bulk_create(
            [Membership(user=users[t * len(team_roles) + r], team=teams[t],
                        agency=agencies[kind], role=role,
                        start_date=today - datetime.timedelta(days=500))
             for t in range(teams_count) for r, (role, kind) in enumerate(team_roles)],
            batch_size=2000)
        counts.update(teams=teams_count, users=len(users))
        deadline.check("loading teams")

        with connection.cursor() as cursor:
            case0 = next_id(cursor, Case)
            person0 = next_id(cursor, Person)
            perm0 = next_id(cursor, CaseGroupObjectPermission)
            note0 = next_id(cursor, CaseNote)
            grant0 = next_id(cursor, CaseGrant)
            userperm0 = next_id(cursor, CaseUserObjectPermission)
            categories = ["early_help", "child_in_need", "child_protection_plan",
                          "child_looked_after"]
            plan = []  # (case id, team index, surname, open?)
            case_rows = []
            for i in range(cases):
                t = i % teams_count
                surname = rng.choice(SURNAMES)
                is_open = rng.random() >= 0.3
                opened = today - datetime.timedelta(days=rng.randint(30, 2500))
                closed = None if is_open else opened + datetime.timedelta(days=rng.randint(20, 600))
                lead = users[t * len(team_roles) + 1].pk if rng.random() < 0.9 else None
                plan.append((case0 + i, t, surname))
                case_rows.append({
                    "id": case0 + i, "reference": f"XT-{i + 1:07d}", "family_name": surname,
                    "status": "open" if is_open else "closed", "category": rng.choice(categories),
                    "allocated_team_id": teams[t].pk, "lead_practitioner_id": lead,
                    "opened_on": opened, "closed_on": closed})
            counts["cases"] = copy_rows(cursor, Case, case_rows)
            del case_rows
            deadline.check("loading cases")

            def people_rows():
                pid = person0
                for case_id, _t, surname in plan:
                    # 2-3 people: a parent and one or two children, or a child and a
                    # parent's partner (another surname)
                    family = [("mother", rng.choice(ADULT_NAMES), _dob(rng, 20, 45))]
                    children = rng.randint(1, 2)
                    family += [("child", rng.choice(CHILD_NAMES), _dob(rng, 0, 17))
                               for _ in range(children)]
                    if children == 1 and rng.random() < 0.3:
                        family.append(("parents_partner", rng.choice(ADULT_NAMES), _dob(rng, 20, 50)))
                    for role, first, born in family:
                        partner = role == "parents_partner"
                        name = f"{first} {rng.choice(SURNAMES) if partner else surname}"
                        yield {"id": pid, "case_id": case_id, "full_name": name,
                               "date_of_birth": born, "role_in_family": role}
                        pid += 1

            counts["people"] = copy_rows(cursor, Person, people_rows())
            deadline.check("loading people")

            def permission_rows():
                rid = perm0
                for case_id, t, _surname in plan:
                    for codename in ("view_case", "contribute_to_case"):
                        yield {"id": rid, "permission_id": perms[codename], "group_id": groups[t].pk,
                               "content_object_id": case_id, "expires_at": None}
                        rid += 1
                    if rng.random() < 0.02:  # handed over: the previous team reads for a while
                        previous = (t + 1 + rng.randrange(teams_count - 1)) % teams_count \
                            if teams_count > 1 else t
                        if previous != t:
                            yield {"id": rid, "permission_id": perms["view_case"],
                                   "group_id": groups[previous].pk, "content_object_id": case_id,
                                   "expires_at": now + datetime.timedelta(days=rng.randint(1, 28))}
                            rid += 1

            counts["team permission rows"] = copy_rows(cursor, CaseGroupObjectPermission,
                                                   permission_rows())
            deadline.check("loading permissions")

            keyworkers = [(case_id, t) for case_id, t, _s in plan if rng.random() < 0.01]
            grant_rows, userperm_rows = [], []
            for n, (case_id, t) in enumerate(keyworkers):
                other = (t + 1) % teams_count
                user_id = users[other * len(team_roles) + 2].pk
                manager_id = users[t * len(team_roles)].pk
                grant_rows.append({"id": grant0 + n, "case_id": case_id, "user_id": user_id,
                                   "kind": "keyworker", "granted_by_id": manager_id,
                                   "starts_at": now - datetime.timedelta(days=30)})
                for k, codename in enumerate(("view_case", "contribute_to_case")):
                    userperm_rows.append({"id": userperm0 + 2 * n + k, "permission_id": perms[codename],
                                          "user_id": user_id, "content_object_id": case_id,
                                          "grant_id": grant0 + n, "expires_at": None})
            counts["keyworker grants"] = copy_rows(cursor, CaseGrant, grant_rows)
            copy_rows(cursor, CaseUserObjectPermission, userperm_rows)

            def note_rows():
                nid = note0
                kinds = ["home_visit", "phone_call", "office_visit", "multi_agency_meeting",
                         "direct_work"]
                for case_id, t, _surname in plan:
                    for _ in range(rng.randint(1, 5)):
                        r = rng.randrange(len(team_roles))
                        author = users[t * len(team_roles) + r].pk
                        agency = agencies[team_roles[r][1]].pk
                        when = now - datetime.timedelta(days=rng.randint(1, 900),
                                                        minutes=rng.randint(0, 1440))
                        draft = rng.random() < 0.05
                        roll = rng.random()
                        sensitivity = "sealed" if roll < 0.03 else "agency_restricted" if roll < 0.15 \
                            else "standard"
                        yield {"id": nid, "case_id": case_id, "author_id": author,
                               "author_agency_id": agency, "note_type": rng.choice(kinds),
                               "occurred_at": when,
                               "body": "Visited the family; children seen and spoken to alone.",
                               "sensitivity": sensitivity, "state": "draft" if draft else "final",
                               "created_at": when, "updated_at": when,
                               "finalised_at": None if draft else when}
                        nid += 1

            counts["notes"] = copy_rows(cursor, CaseNote, note_rows())
            deadline.check("loading notes")

            for model in (Case, Person, CaseGroupObjectPermission, CaseNote, CaseGrant,
                          CaseUserObjectPermission):
                table = model._meta.db_table
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT MAX(id) FROM {table}))")
    return counts


# --- the measurements -----------------------------------------------------------------

def report(pages: list[dict], header: list[str], show_explain: bool) -> bool:
    print()
    for line in header:
        print(line)
    print()
    columns = ("page", "requests", "p50 ms", "p95 ms", "max ms", "SQL queries", "transactions",
               f"p95 < {TARGET_P95_MS:g} ms")
    print("| " + " | ".join(columns) + " |")
    print("|---|" + "|".join("---:" for _ in columns[1:]) + "|")
    passed = True
    for page in pages:
        ok = page["p95"] < TARGET_P95_MS
        passed &= ok
        print(f"| {page['name']} | {page['timed']} | {page['p50']:.1f} | {page['p95']:.1f} | "
              f"{page['max']:.1f} | {page['queries']} | {page['transactions']} | "
              f"{'PASS' if ok else 'FAIL'} |")
    print()
    print("Where a page's time goes: each SQL statement, median ms over 5 requests")
    for page in pages:
        parts = ", ".join(f"{label} {ms:.1f}" for label, ms, _sql, _p in page["statements"])
        print(f"  {page['name']}: {parts}")
    print("(requests: timed, after the warm-up; fewer than asked when --page-seconds ran out. "
          "SQL queries: statements per page, BEGIN and COMMIT not counted; transactions: "
          "COMMITs per page, the audit entry's)")
    print()
    print(f"target: p95 < {TARGET_P95_MS:g} ms for every page on PostgreSQL: "
          f"{'PASS' if passed else 'FAIL'}")
    for page in pages:
        if page["statements"] and (show_explain or page["p95"] >= TARGET_P95_MS):
            label, ms, sql, params = max(page["statements"], key=lambda s: s[1])
            print(f"\nEXPLAIN ANALYZE of the slowest statement of {page['name']} ({label}, {ms:.1f} ms):")
            print(explain(sql, params))
    return passed


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--cases", type=int, default=100_000,
                        help="cases of other teams, bulk-loaded (100000)")
    parser.add_argument("--my-cases", type=int, default=50,
                        help="cases the practitioner works on, made through the actions (50)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (200)")
    parser.add_argument("--warmup", type=int, default=20, help="requests per page discarded first (20)")
    add_pg_admin_url(parser)
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of each page's slowest statement (always on FAIL)")
    parser.add_argument("--seed", type=int, default=2025, help="random seed for the filler data")
    parser.add_argument("--page-seconds", type=float, default=45,
                        help="at most this long per page, warm-up (a quarter of it at most) and "
                             "timed requests (45): a slow page is reported from the requests "
                             "that fitted")
    parser.add_argument("--no-jit", action="store_true",
                        help="SET jit = off on the benchmark's connection (to compare)")
    parser.add_argument("--budget", type=float, default=600, help="seconds the whole run may take (600)")
    args = parser.parse_args()
    if not (1 <= args.cases <= 2_000_000 and 1 <= args.my_cases <= 1000):
        parser.error("--cases: 1..2000000; --my-cases: 1..1000")
    if not (1 <= args.requests <= 100_000 and 0 <= args.warmup <= 10_000):
        parser.error("--requests: 1..100000; --warmup: 0..10000")

    try:
        with scratch_django(args, DB_NAME, "lower --requests") as scratch:
            return run(args, scratch)
    except (BenchError, Interrupted) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2


def run(args, scratch) -> int:
    """Build the caseload and the filler, time the pages, print the report; 0 when every
    page passes."""
    deadline, database, started = scratch.deadline, scratch.database, scratch.started
    rng = random.Random(args.seed)

    log(f"the practitioner's team and {args.my_cases} cases, through the actions")
    mine = build_practitioner(args.my_cases, rng)
    deadline.check("building the practitioner's cases")
    log(f"bulk-loading {args.cases:,} other cases")
    load_started = time.monotonic()
    counts = load_filler(args.cases, mine["agencies"], rng, deadline)
    load_seconds = time.monotonic() - load_started
    log("loaded " + ", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" in {load_seconds:.1f} s")
    analyze()
    setup_seconds = time.monotonic() - started
    log(f"ANALYZE done; setup took {setup_seconds:.0f} s")

    from django.test import Client

    client = Client()
    client.force_login(mine["user"])
    surname = mine["surnames"][0]
    reference = mine["references"][1]
    expected_cases = args.my_cases

    def check_caseload(html):
        shown = html.count(" family</a>")
        if shown != expected_cases:
            raise BenchError(f"the caseload shows {shown} cases, not {expected_cases}")

    def check_search(needle):
        def check(html):
            if 'id="results-cases"' not in html or needle not in html:
                raise BenchError(f"the search page does not show {needle!r}")
        return check

    pages = []
    for name, url, check in [
        ("caseload  GET /", "/", check_caseload),
        (f"search    GET /search/?q={surname}", f"/search/?q={surname}",
         check_search(f"{surname} family")),
        (f"search    GET /search/?q={reference}", f"/search/?q={reference}",
         check_search(f"({reference}, {mine['team'].name})")),
    ]:
        log(f"timing {name.split()[0]} ({args.warmup} warm-up + {args.requests} requests): {url}")
        pages.append(measure_page(client, name, url, args, deadline, check))

    from casenotes.models import Case, Person

    visible_hits = sum(1 for s in mine["surnames"] if surname.lower() in s.lower())
    other_hits = Case.objects.filter(family_name__icontains=surname).count() - visible_hits
    header = [
        f"Caseload and search benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        describe_machine(scratch.load_before),
        f"database: {database.describe()}, {jit_setting()}",
        f"data: {Case.objects.count():,} cases ({args.my_cases} visible to the practitioner, "
        f"{Case.objects.filter(status='open').count():,} open), {Person.objects.count():,} people, "
        f"{counts['notes']:,} bulk-loaded notes, {counts['team permission rows']:,} team "
        f"permission rows, {counts['teams']:,} other teams; '{surname}' matches {visible_hits} of "
        f"their cases and {other_hits} of others",
        timing_line(args, setup_seconds),
    ]
    passed = report(pages, header, args.explain)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
