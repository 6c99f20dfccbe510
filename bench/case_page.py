"""The case page of a long record: page time for one case of 5,000 notes.

    .venv/bin/python bench/case_page.py                      # 5,000 notes, 200 requests a page
    .venv/bin/python bench/case_page.py --notes 20000        # a longer record
    .venv/bin/python bench/case_page.py --explain            # and EXPLAIN ANALYZE the slowest query
    .venv/bin/python bench/case_page.py --help               # sizes, counts, addresses

The case page (GET /cases/<id>/) shows a case's notes newest first, in pages of
CASE_NOTES_PER_PAGE (50). It decides what the viewer sees of every note of the case
from a few columns (one query over all of them), then reads only the page's notes in
full. One social worker opens one case with a long record; the script times, in this
process through django.test.Client (signed in with `force_login`, the whole middleware
stack, template rendering and the audit entry each page writes), N requests of each of:

- page 1, GET /cases/<id>/ (which also moves the worker's reading position);
- the last page, GET /cases/<id>/?page=<last>;
- a filter by type, GET /cases/<id>/?note_type=phone_call (about a fifth of the notes);
- a filter by words, GET /cases/<id>/?words=interpreter (a word in about 2% of the notes).

A warm-up (20 requests by default) is discarded. It prints p50, p95 and max page time in
milliseconds, the SQL statements each page runs, the page's slowest statement, and
PASS/FAIL against the target: p95 < 150 ms per page on PostgreSQL. It prints too how many
notes the case has (--notes), how many the worker sees listed and the number of pages.
Exit status 0 when every page meets the target, 1 when one does not, 2 when it could not
run.

Setup, all on loopback and all removed afterwards: a scratch PostgreSQL database
`bench_case_page` (dropped first if an earlier run left it), migrated by `manage.py
migrate` in a subprocess (DJANGO_SETTINGS_MODULE=workspace.settings.test). The team
(agencies, a team manager, a social worker, a probation officer, a domestic-abuse victim
worker), the one case, its family and a few dozen notes and addenda are written through
the real actions (teams.actions, casenotes.actions), so their permission, history, audit
and event rows are the product's. The bulk of the record (--notes, 5,000) is benchmark
scaffolding bulk-loaded with COPY: final notes with bodies of 200-1,500 characters,
occurred over the last three years, about 80% standard, 15% agency-restricted by the
probation officer (a placeholder for the social worker) and 5% sealed by the DA worker
with no readers (hidden from the social worker); about half say whom they are about, and
some have addenda. Then ANALYZE. No Redis is needed (the in-memory channel layer).

Every wait is bounded: PostgreSQL statements time out (60 s), the migration has a time
limit, each page has at most --page-seconds (45) for its warm-up and timed requests (a
page too slow for all N is reported from the requests that fitted, and the table says
how many), and the whole run has a deadline (--budget, 600 s). The scratch database is
dropped at the end, on error and on SIGTERM too.
"""

import datetime
import math
import random
import re
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

DB_NAME = "bench_case_page"
TARGET_P95_MS = 150.0
#: Notes written through do_create_note (the rest are bulk-loaded).
ACTION_NOTES = 36
#: The word the words filter looks for: in about 2% of the notes' bodies, nowhere else.
WORD = "interpreter"
WORD_SHARE = 0.02
WORD_SENTENCE = "An interpreter was booked so that grandmother could take part in the next meeting."

SENTENCES = [
    "Visited the family home; both children were seen together and alone.",
    "Mother said the week had been difficult but that she is managing the routines.",
    "The children's bedrooms were clean, with beds made and clothes put away.",
    "School reports attendance of 92% this term and no concerns in class.",
    "Discussed the safety plan again and agreed what she will do if he turns up.",
    "Father attended his appointment and engaged well with the session.",
    "The younger child showed me his drawings and talked about his friends at nursery.",
    "Health visitor confirmed the developmental check is booked for next month.",
    "There were no signs of alcohol in the home during the visit.",
    "Mother disclosed that she is worried about money and the rent arrears.",
    "Agreed a referral to the food bank and to the debt advice service.",
    "The older child said she feels safe at home and likes her new teacher.",
    "Spoke to the grandmother by phone; she continues to help with school pick-ups.",
    "Reviewed the child protection plan actions with the family; most are on track.",
    "Father has not yet completed the perpetrator programme assessment.",
    "The home was cold; mother said the boiler has been reported to the landlord.",
    "Direct work: used the three houses tool with the older child.",
    "Mother presented as tired but calm, and was warm towards the children.",
    "Next visit booked for the same time next week, announced.",
    "Shared the outcome of the strategy discussion with mother in plain terms.",
    "The mental-health practitioner will see mother jointly on Thursday.",
    "No new police call-outs to the address since the last review.",
    "The baby was asleep in the Moses basket; safe sleep advice was repeated.",
    "Contact with father is supervised at the family centre on Saturdays.",
    "Discussed the children's routines, bedtimes and screen time.",
]
ADDENDA = [
    "Correction: the school meeting was on the Tuesday, not the Wednesday.",
    "Added after speaking to the health visitor: the check went ahead as planned.",
    "The referral mentioned above was accepted the following day.",
    "Clarification: the grandmother, not the mother, made the call to school.",
]
#: Bulk notes' types and their weights (phone calls about a fifth).
NOTE_TYPES = [("home_visit", 30), ("phone_call", 20), ("office_visit", 10), ("multi_agency_meeting", 10),
              ("supervision", 5), ("direct_work", 15), ("strategy_discussion", 3), ("cp_conference", 3),
              ("other", 4)]
THREE_YEARS = 3 * 365 * 86400


def body_text(rng: random.Random, with_word: bool = False) -> str:
    """A note's body of 200-1,500 characters (with the filter's word when asked)."""
    target = rng.randint(200, 1500)
    sentences = []
    length = 0
    while length < target - 40:
        sentence = rng.choice(SENTENCES)
        sentences.append(sentence)
        length += len(sentence) + 1
    if with_word:
        sentences.insert(rng.randrange(len(sentences) + 1), WORD_SENTENCE)
    return " ".join(sentences)[:1500]


# --- the team and the case, through the actions ---------------------------------------

def build_case(action_notes: int, rng: random.Random) -> dict:
    """The team, the case, its family and `action_notes` notes (and a few addenda),
    written as the product writes them."""
    from django.utils import timezone

    from casenotes.actions import do_add_addendum, do_add_person, do_create_case, do_create_note
    from casenotes.models import Case, CaseNote, Person
    from teams.actions import do_create_user, do_save_agency, do_save_membership, do_save_team
    from teams.models import Agency, Membership, Role, Team

    admin = do_create_user(acting_user=None, username="bench.admin", password=PASSWORD,
                           first_name="Bench", last_name="Administrator", is_superuser=True)
    agencies = {
        kind: do_save_agency(acting_user=admin, agency=Agency(name=name, short_name=short, kind=kind))
        for kind, name, short in [
            (Agency.Kind.CHILDRENS_SOCIAL_CARE, "Bench Children's Services", "Children's services"),
            (Agency.Kind.PROBATION, "Bench Probation Service", "Probation"),
            (Agency.Kind.DOMESTIC_ABUSE, "Bench DA Service", "DA service"),
        ]
    }
    team = do_save_team(acting_user=admin, team=Team(name="Bench Family Safeguarding Team",
                                                     kind=Team.Kind.FAMILY_SAFEGUARDING))
    start = timezone.localdate() - datetime.timedelta(days=4 * 365)
    users = {}
    for key, username, first, last, role, kind in [
        ("manager", "bench.manager", "Morgan", "Hale", Role.TEAM_MANAGER,
         Agency.Kind.CHILDRENS_SOCIAL_CARE),
        ("worker", "bench.worker", "Sam", "Okoro", Role.SOCIAL_WORKER, Agency.Kind.CHILDRENS_SOCIAL_CARE),
        ("probation", "bench.probation", "Owen", "Reid", Role.PROBATION_OFFICER, Agency.Kind.PROBATION),
        ("da", "bench.da", "Dana", "Marsh", Role.DA_VICTIM_WORKER, Agency.Kind.DOMESTIC_ABUSE),
    ]:
        user = do_create_user(acting_user=admin, username=username, password=PASSWORD,
                              first_name=first, last_name=last)
        do_save_membership(acting_user=admin, membership=Membership(
            user=user, team=team, agency=agencies[kind], role=role, start_date=start))
        users[key] = user
    manager, worker = users["manager"], users["worker"]

    case = do_create_case(
        acting_user=manager, reference="FS-22-00417", family_name="Thornbury",
        category=Case.Category.CHILD_PROTECTION_PLAN, team=team, lead_practitioner=worker,
        opened_on=timezone.localdate() - datetime.timedelta(days=3 * 365 + 30),
    )
    R = Person.RoleInFamily
    today = datetime.date.today()
    people = [
        do_add_person(acting_user=manager, case=case, full_name=name, role_in_family=role,
                      date_of_birth=today - datetime.timedelta(days=days))
        for name, role, days in [("Leanne Thornbury", R.MOTHER, 31 * 365),
                                 ("Darren Thornbury", R.FATHER, 35 * 365),
                                 ("Ruby Thornbury", R.CHILD, 9 * 365 + 40),
                                 ("Alfie Thornbury", R.CHILD, 4 * 365 + 200)]
    ]
    mother, father, child_a, child_b = people

    now = timezone.now()
    S, T = CaseNote.Sensitivity, CaseNote.NoteType
    plans = [  # (author, type, sensitivity, about, readers, significant)
        (worker, T.HOME_VISIT, S.STANDARD, [child_a, child_b], [], False),
        (worker, T.PHONE_CALL, S.STANDARD, [mother], [], False),
        (manager, T.SUPERVISION, S.STANDARD, [], [], False),
        (users["probation"], T.OFFICE_VISIT, S.AGENCY_RESTRICTED, [father], [], False),
        (users["da"], T.DIRECT_WORK, S.SEALED, [mother], [], False),
        (worker, T.MULTI_AGENCY_MEETING, S.STANDARD, [mother, father], [], True),
        (users["da"], T.PHONE_CALL, S.STANDARD, [mother], [], False),
        (users["da"], T.OTHER, S.SEALED, [mother], [worker, manager], False),
        (users["probation"], T.PHONE_CALL, S.AGENCY_RESTRICTED, [father], [], False),
    ]
    notes = []
    for i in range(action_notes):
        author, note_type, sensitivity, about, readers, significant = plans[i % len(plans)]
        notes.append(do_create_note(
            acting_user=author, case=case, note_type=note_type,
            occurred_at=now - datetime.timedelta(days=i * 30 + 1, hours=i % 9),
            body=body_text(rng, with_word=i == 7), sensitivity=sensitivity,
            is_significant=significant, people=about, readers=readers, finalise=True,
        ))
    addenda = 0
    for note in notes[:4 * len(plans):len(plans)]:  # the worker's home visits, a few
        do_add_addendum(acting_user=worker, note=note, body=rng.choice(ADDENDA))
        addenda += 1
    return {"case": case, "users": users, "agencies": agencies, "people": people,
            "addenda": addenda, "team": team}


# --- the bulk of the record: benchmark scaffolding ------------------------------------

def load_notes(count: int, built: dict, rng: random.Random, deadline: Deadline) -> dict:
    """`count` final notes of the case, their links to the people they are about and some
    addenda, with COPY; the rows the actions would have written for the notes themselves
    (no history, audit or event rows: those are the action-made notes')."""
    from django.db import connection, transaction
    from django.utils import timezone

    from casenotes.models import Addendum, CaseNote
    from teams.models import Agency

    Link = CaseNote.people.through
    case, users, agencies = built["case"], built["users"], built["agencies"]
    csc = agencies[Agency.Kind.CHILDRENS_SOCIAL_CARE].pk
    probation = agencies[Agency.Kind.PROBATION].pk
    da = agencies[Agency.Kind.DOMESTIC_ABUSE].pk
    standard_authors = [(users["worker"].pk, csc)] * 5 + [(users["manager"].pk, csc)] * 2 + [
        (users["probation"].pk, probation)] * 2 + [(users["da"].pk, da)] * 2
    person_ids = [p.pk for p in built["people"]]
    types, weights = zip(*NOTE_TYPES, strict=True)
    now = timezone.now()
    counts = {}
    links, addenda = [], []
    with transaction.atomic(), connection.cursor() as cursor:
        note0 = next_id(cursor, CaseNote)
        link0 = next_id(cursor, Link)
        addendum0 = next_id(cursor, Addendum)

        def note_rows():
            for n in range(count):
                nid = note0 + n
                roll = rng.random()
                if roll < 0.05:
                    sensitivity, (author, agency) = "sealed", (users["da"].pk, da)
                elif roll < 0.20:
                    sensitivity, (author, agency) = "agency_restricted", (users["probation"].pk, probation)
                else:
                    sensitivity, (author, agency) = "standard", rng.choice(standard_authors)
                occurred = now - datetime.timedelta(seconds=rng.uniform(3600, THREE_YEARS))
                written = min(now, occurred + datetime.timedelta(minutes=rng.randint(10, 2880)))
                if rng.random() < 0.5:
                    for person in rng.sample(person_ids, rng.randint(1, 2)):
                        links.append({"id": link0 + len(links), "casenote_id": nid, "person_id": person})
                if rng.random() < 0.04:
                    added = min(now, written + datetime.timedelta(days=rng.randint(1, 30)))
                    addenda.append({"id": addendum0 + len(addenda), "note_id": nid, "author_id": author,
                                    "author_agency_id": agency, "body": rng.choice(ADDENDA),
                                    "created_at": added})
                if n % 2000 == 0:
                    deadline.check("loading notes")
                yield {"id": nid, "case_id": case.pk, "author_id": author, "author_agency_id": agency,
                       "note_type": rng.choices(types, weights)[0], "occurred_at": occurred,
                       "body": body_text(rng, with_word=rng.random() < WORD_SHARE),
                       "sensitivity": sensitivity, "is_significant": rng.random() < 0.05,
                       "restricted_person_id": None, "restricted_agency_id": None,
                       "state": "final", "version": 1, "created_at": written, "updated_at": written,
                       "finalised_at": written, "client_ref": ""}

        counts["notes"] = copy_rows(cursor, CaseNote, note_rows())
        counts["note-people links"] = copy_rows(cursor, Link, links)
        counts["addenda"] = copy_rows(cursor, Addendum, addenda)
        for model in (CaseNote, Link, Addendum):
            table = model._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT MAX(id) FROM {table}))")
    return counts


def expected(built: dict) -> dict:
    """What the social worker should see, counted from the rows (not through the policy):
    listed (full or placeholder) unfiltered, and read in full under each filter."""
    from django.db.models import Count, Q

    from casenotes.models import CaseNote
    from teams.models import Agency

    worker = built["users"]["worker"]
    csc = built["agencies"][Agency.Kind.CHILDRENS_SOCIAL_CARE]
    notes = CaseNote.objects.filter(case=built["case"])
    final = Q(state=CaseNote.State.FINAL)
    listed = notes.filter(Q(author=worker) | final & (~Q(sensitivity="sealed") | Q(readers=worker)))
    full = notes.filter(Q(author=worker) | final & (
        Q(sensitivity="standard")
        | Q(sensitivity="agency_restricted") & (Q(restricted_agency=csc)
                                                | Q(restricted_agency__isnull=True, author_agency=csc))
        | Q(sensitivity="sealed", readers=worker)))
    return {
        "all": notes.count(),
        "by sensitivity": {row["sensitivity"]: row["n"]
                           for row in notes.values("sensitivity").annotate(n=Count("pk"))},
        "listed": listed.distinct().count(),
        "full": full.distinct().count(),
        "phone_call": full.filter(note_type="phone_call").distinct().count(),
        "words": full.filter(Q(body__icontains=WORD) | Q(addenda__body__icontains=WORD)).distinct().count(),
    }


# --- the measurements -----------------------------------------------------------------

def _pages(count: int, per_page: int) -> str:
    pages = max(1, math.ceil(count / per_page))
    return f"{pages} page{'s' if pages != 1 else ''}"


def check_listing(total: int, page: int, per_page: int):
    """A check of a page of notes: `total` notes listed in all, this is page `page`."""
    pages = max(1, math.ceil(total / per_page))
    first = (page - 1) * per_page + 1
    last = min(total, page * per_page)

    def check(html: str) -> None:
        shown = html.count(' id="note-')
        if shown != last - first + 1:
            raise BenchError(f"page {page} shows {shown} notes, not {last - first + 1}")
        if pages > 1 and f"Showing notes {first} to {last} of {total}," not in html:
            found = re.search(r"Showing notes \d+ to \d+ of \d+", html)
            raise BenchError(f"page {page} says {found[0] if found else 'no count'!r}, "
                             f"not 'Showing notes {first} to {last} of {total}'")
    return check


def report(pages: list[dict], header: list[str], show_explain: bool) -> bool:
    print()
    for line in header:
        print(line)
    print()
    columns = ("page", "requests", "p50 ms", "p95 ms", "max ms", "SQL queries", "SQL ms",
               "slowest statement (ms)", f"p95 < {TARGET_P95_MS:g} ms")
    print("| " + " | ".join(columns) + " |")
    print("|---|" + "|".join("---:" for _ in columns[1:]) + "|")
    passed = True
    for page in pages:
        ok = page["p95"] < TARGET_P95_MS
        passed &= ok
        slowest = f"{page['slowest'][0]} {page['slowest'][1]:.1f}" if page["slowest"] else "?"
        print(f"| {page['name']} | {page['timed']} | {page['p50']:.1f} | {page['p95']:.1f} | "
              f"{page['max']:.1f} | {page['queries']} | {page['sql_ms']:.1f} | {slowest} | "
              f"{'PASS' if ok else 'FAIL'} |")
    print()
    print("Where a page's time goes: each SQL statement, median ms over 5 requests")
    for page in pages:
        parts = ", ".join(f"{label} {ms:.1f}" for label, ms, _sql, _p in page["statements"])
        print(f"  {page['name']}: {parts}")
    print("(requests: timed, after the warm-up; fewer than asked when --page-seconds ran out. "
          "SQL queries: statements per page, BEGIN and COMMIT not counted; SQL ms: their total, "
          "median over 5 requests; the rest of a page's time is Python: the policy over every "
          "note, the template)")
    print()
    print(f"target: p95 < {TARGET_P95_MS:g} ms for every page on PostgreSQL: "
          f"{'PASS' if passed else 'FAIL'}")
    for page in pages:
        if page["slowest"] and (show_explain or page["p95"] >= TARGET_P95_MS):
            label, ms, sql, params = page["slowest"]
            print(f"\nEXPLAIN ANALYZE of the slowest statement of {page['name']} ({label}, {ms:.1f} ms):")
            print(explain(sql, params))
    return passed


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--notes", type=int, default=5000,
                        help="notes of the case, bulk-loaded (5000), besides the "
                             f"{ACTION_NOTES} written through the actions")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (200)")
    parser.add_argument("--warmup", type=int, default=20, help="requests per page discarded first (20)")
    add_pg_admin_url(parser)
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of each page's slowest statement (always on FAIL)")
    parser.add_argument("--seed", type=int, default=2025, help="random seed for the notes")
    parser.add_argument("--page-seconds", type=float, default=45,
                        help="at most this long per page, warm-up (a quarter of it at most) and "
                             "timed requests (45): a slow page is reported from the requests "
                             "that fitted")
    parser.add_argument("--no-jit", action="store_true",
                        help="SET jit = off on the benchmark's connection (to compare)")
    parser.add_argument("--budget", type=float, default=600, help="seconds the whole run may take (600)")
    args = parser.parse_args()
    if not 0 <= args.notes <= 500_000:
        parser.error("--notes: 0..500000")
    if not (1 <= args.requests <= 100_000 and 0 <= args.warmup <= 10_000):
        parser.error("--requests: 1..100000; --warmup: 0..10000")
    if not (1 <= args.page_seconds <= 3600 and 60 <= args.budget <= 24 * 3600):
        parser.error("--page-seconds: 1..3600; --budget: 60..86400")

    try:
        with scratch_django(args, DB_NAME, "lower --notes or --requests") as scratch:
            return run(args, scratch)
    except (BenchError, Interrupted) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2


def run(args, scratch) -> int:
    """Build the case, time its pages, print the report; 0 when every page passes."""
    from django.conf import settings

    deadline, database, started = scratch.deadline, scratch.database, scratch.started
    rng = random.Random(args.seed)

    log(f"the team, the case and {ACTION_NOTES} notes, through the actions")
    built = build_case(ACTION_NOTES, rng)
    deadline.check("building the case")
    log(f"bulk-loading {args.notes:,} notes")
    load_started = time.monotonic()
    counts = load_notes(args.notes, built, rng, deadline)
    load_seconds = time.monotonic() - load_started
    log("loaded " + ", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" in {load_seconds:.1f} s")
    analyze()
    setup_seconds = time.monotonic() - started
    log(f"ANALYZE done; setup took {setup_seconds:.0f} s")

    seen = expected(built)
    per_page = settings.CASE_NOTES_PER_PAGE
    last_page = max(1, math.ceil(seen["listed"] / per_page))
    if not seen["words"]:
        raise BenchError(f"no note the worker reads says {WORD!r}: raise --notes")

    from django.test import Client

    client = Client()
    client.force_login(built["users"]["worker"])
    case_url = f"/cases/{built['case'].pk}/"
    pages = []
    for name, url, check in [
        ("page 1     GET /cases/<id>/", case_url, check_listing(seen["listed"], 1, per_page)),
        (f"last page  GET /cases/<id>/?page={last_page}", f"{case_url}?page={last_page}",
         check_listing(seen["listed"], last_page, per_page)),
        ("by type    GET /cases/<id>/?note_type=phone_call", f"{case_url}?note_type=phone_call",
         check_listing(seen["phone_call"], 1, per_page)),
        (f"words      GET /cases/<id>/?words={WORD}", f"{case_url}?words={WORD}",
         check_listing(seen["words"], 1, per_page)),
    ]:
        log(f"timing {name.split('  ')[0]} ({args.warmup} warm-up + {args.requests} requests): {url}")
        pages.append(measure_page(client, name, url, args, deadline, check))

    by = seen["by sensitivity"]
    header = [
        f"Case page benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        describe_machine(scratch.load_before),
        f"database: {database.describe()}, {jit_setting()}",
        f"data: --notes {args.notes:,}: case {built['case'].reference} has {seen['all']:,} notes "
        f"({counts['notes']:,} bulk-loaded, {ACTION_NOTES} through the actions; "
        f"{by.get('standard', 0):,} standard, {by.get('agency_restricted', 0):,} agency-restricted, "
        f"{by.get('sealed', 0):,} sealed), {counts['note-people links']:,} bulk note-people links, "
        f"{counts['addenda'] + built['addenda']:,} addenda",
        f"the social worker sees {seen['listed']:,} notes listed ({seen['full']:,} in full, "
        f"{seen['listed'] - seen['full']:,} as placeholders) in {last_page} pages of {per_page}; "
        f"phone calls they read: {seen['phone_call']:,} ({_pages(seen['phone_call'], per_page)}); "
        f"notes they read with '{WORD}': {seen['words']:,} ({_pages(seen['words'], per_page)})",
        timing_line(args, setup_seconds),
    ]
    passed = report(pages, header, args.explain)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
