"""Scale-out: two Daphne processes sharing one PostgreSQL database and one Redis channel
layer behave as one site. A note saved through one server reaches the sockets held by
the other, each at the level its reader is entitled to.

Everything is real: two `daphne` processes (tests.servers.daphne_server), real
WebSocket clients (the `websockets` library), session cookies from a real sign-in, and
an HTTP form post to one server. The test is transactional so the servers see its data.

Events are matched by a marker unique to each test run, so events from anything else
sharing the Redis server cannot be mistaken for this test's.
"""

import asyncio
import http.client
import io
import json
import os
import re
import time
import uuid
from contextlib import ExitStack
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
import websockets
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from casenotes import actions, events
from casenotes.management.commands.seed_demo import DEMO_PASSWORD
from casenotes.models import CaseNote
from tests.demo import Demo
from tests.servers import daphne_server

pytestmark = [pytest.mark.requires_postgres, pytest.mark.requires_redis]

#: How long a delivery may take before the test fails (it takes milliseconds).
DELIVERY_TIMEOUT = 5.0
#: Bounds on anything that loops: frames read while waiting for one event.
MAX_FRAMES = 500


@pytest.fixture
def demo_world(transactional_db, settings) -> Demo:
    """The demo world, committed (the servers read it from their own connections)."""
    settings.DEBUG = True
    try:
        call_command("seed_demo", stdout=io.StringIO())
    finally:
        settings.DEBUG = False
    return Demo()


@pytest.fixture
def servers(demo_world):
    """Two Daphne processes, A and B, on different ports, on the same database and the
    same Redis channel layer (REDIS_URL passed explicitly)."""
    redis_url = os.environ["REDIS_URL"]
    with ExitStack() as stack:
        a = stack.enter_context(daphne_server(env={"REDIS_URL": redis_url}))
        b = stack.enter_context(daphne_server(env={"REDIS_URL": redis_url}))
        assert a != b
        yield {"A": a, "B": b}


def session_cookie(username: str) -> str:
    """A real `sessionid`: sign in with Django's test client (sessions live in the
    shared database, so both servers accept it)."""
    client = Client()
    assert client.login(username=username, password=DEMO_PASSWORD)
    return client.cookies["sessionid"].value


class Room:
    """One person's WebSocket to a case room on one server, and every frame it got."""

    def __init__(self, name: str, ws):
        self.name, self.ws, self.frames = name, ws, []

    @classmethod
    async def open(cls, name: str, base_url: str, case_id: int, sessionid: str, after: int):
        port = urlsplit(base_url).port
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/cases/{case_id}/",
            origin=websockets.Origin(f"http://127.0.0.1:{port}"),
            additional_headers={"Cookie": f"sessionid={sessionid}"},
            open_timeout=DELIVERY_TIMEOUT, close_timeout=2,
        )
        room = cls(name, ws)
        await ws.send(json.dumps({"type": "resume", "after": after}))
        await room.expect(lambda f: f["type"] == "synced")
        return room

    async def expect(self, predicate, timeout: float = DELIVERY_TIMEOUT) -> dict:
        """The first new frame matching `predicate`, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        for _ in range(MAX_FRAMES):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                raw = await asyncio.wait_for(self.ws.recv(), timeout=left)
            except TimeoutError:
                break
            frame = json.loads(raw)
            self.frames.append(frame)
            if predicate(frame):
                return frame
        seen = [f.get("type") + (f" {f.get('kind')} {f.get('level')}" if "kind" in f else "")
                for f in self.frames[-20:]]
        raise AssertionError(f"{self.name}: nothing matching within {timeout}s; last frames: {seen}")

    async def close(self):
        await self.ws.close()


def note_event(marker: str, kind: str):
    return lambda f: f["type"] == "event" and f.get("kind") == kind and marker in f.get("html", "")


def mentions(frames: list[dict], marker: str) -> list[dict]:
    return [f for f in frames if marker in json.dumps(f)]


class Driver:
    """Runs the clients' coroutines on one event loop, step by step, so that between
    steps the test thread can use the ORM (no loop is running then)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.rooms: list[Room] = []

    def run(self, coroutine):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, timeout=20))

    def open(self, *args) -> Room:
        room = self.run(Room.open(*args))
        self.rooms.append(room)
        return room

    def close(self):
        try:
            for room in self.rooms:
                self.run(room.close())
        finally:
            self.loop.close()


@pytest.fixture
def driver():
    driver = Driver()
    yield driver
    driver.close()


def http_finalise(base_url: str, sessionid: str, case_id: int, note: CaseNote, body: str) -> int:
    """Finalise a draft through the server's own edit form over HTTP: GET the form for
    its CSRF token and cookie, POST it back with intent=finalise. Returns the status."""
    port = urlsplit(base_url).port
    path = f"/cases/{case_id}/notes/{note.pk}/edit/"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DELIVERY_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Cookie": f"sessionid={sessionid}"})
        page = conn.getresponse()
        html = page.read().decode()
        assert page.status == 200, html[:500]
        csrf_cookie = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie", "")).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        moment = timezone.localtime(note.occurred_at)
        form = {
            "csrfmiddlewaretoken": token, "version": note.version, "note_type": note.note_type,
            "occurred_day": moment.day, "occurred_month": moment.month,
            "occurred_year": moment.year, "occurred_time": moment.strftime("%H:%M"),
            "body": body, "sensitivity": CaseNote.Sensitivity.STANDARD, "intent": "finalise",
        }
        conn.request("POST", path, body=urlencode(form), headers={
            "Cookie": f"sessionid={sessionid}; csrftoken={csrf_cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
        })
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_draft_and_finalised_note_saved_through_server_a_reach_sockets_on_server_b(
    demo_world, servers, driver
):
    case = demo_world.case()
    after = events.last_seq(case.pk)
    worker = session_cookie("social.worker")
    manager = session_cookie("team.manager")
    marker = f"scale-out-{uuid.uuid4().hex}"

    worker_a = driver.open("social.worker@A", servers["A"], case.pk, worker, after)
    worker_b = driver.open("social.worker@B", servers["B"], case.pk, worker, after)
    manager_b = driver.open("team.manager@B", servers["B"], case.pk, manager, after)

    # 1. A draft saved over server A's socket: its author's socket on B gets it in full.
    body = f"Call with school about attendance. {marker}"
    occurred = timezone.localtime(timezone.now() - timedelta(minutes=5)).replace(microsecond=0)
    driver.run(worker_a.ws.send(json.dumps({
        "type": "draft.save", "note": None, "version": None, "note_type": "phone_call",
        "occurred_at": occurred.isoformat(), "body": body, "sensitivity": "standard",
        "is_significant": False, "people": [], "readers": [],
    })))
    saved = driver.run(worker_a.expect(lambda f: f["type"] in {"draft.saved", "draft.invalid", "error"}))
    assert saved["type"] == "draft.saved", saved
    draft = driver.run(worker_b.expect(note_event(marker, "note.created")))
    assert draft["note"] == saved["note"]
    assert draft["level"] == "full"
    assert "Draft" in draft["html"]

    # 2. The draft finalised through server A's HTTP edit form: the manager on B gets
    #    the standard note in full; the draft itself never reached them.
    note = CaseNote.objects.get(pk=saved["note"])
    assert http_finalise(servers["A"], worker, case.pk, note, body) == 302
    final = driver.run(manager_b.expect(note_event(marker, "note.finalised")))
    assert final["note"] == saved["note"]
    assert final["level"] == "full"
    assert "Draft" not in final["html"]
    earlier = manager_b.frames[:-1]
    assert mentions(earlier, marker) == [], "a draft reached someone other than its author"
    for room in (worker_a, worker_b):
        mine = driver.run(room.expect(note_event(marker, "note.finalised")))
        assert mine["level"] == "full" and mine["seq"] == final["seq"]


def test_note_saved_in_another_process_reaches_both_servers_at_each_readers_level(
    demo_world, servers, driver
):
    """An action run in the test process (a third process) publishes on commit through
    Redis: the manager on B reads the agency-restricted note in full, the social worker
    on A (another agency) gets only the placeholder, without the note's text."""
    case = demo_world.case()
    after = events.last_seq(case.pk)
    marker = f"scale-out-{uuid.uuid4().hex}"
    worker_a = driver.open("social.worker@A", servers["A"], case.pk, session_cookie("social.worker"), after)
    manager_b = driver.open("team.manager@B", servers["B"], case.pk, session_cookie("team.manager"), after)

    note = actions.do_create_note(
        acting_user=demo_world.user("probation"), case=case,
        note_type=CaseNote.NoteType.PHONE_CALL, occurred_at=timezone.now() - timedelta(minutes=1),
        body=f"Licence review. {marker}", sensitivity=CaseNote.Sensitivity.AGENCY_RESTRICTED,
        finalise=True,
    )

    full = driver.run(manager_b.expect(note_event(marker, "note.created")))
    assert (full["note"], full["level"]) == (note.pk, "full")
    placeholder = driver.run(worker_a.expect(
        lambda f: f["type"] == "event" and f.get("note") == note.pk and f.get("seq") == full["seq"]))
    assert placeholder["level"] == "placeholder"
    assert marker not in json.dumps(placeholder)
    assert "Restricted note" in placeholder["html"]
    assert full["seq"] == placeholder["seq"] == events.last_seq(case.pk)
