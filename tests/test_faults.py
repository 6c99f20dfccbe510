"""Faults, against real processes: the record survives what the live layer does not.

Redis stops (a private `redis-server`, started, stopped and started again on the same
loopback port by the test; the consumers run through `workspace.asgi`):
- pages still load and a note saved through the note form is saved in full (the note,
  its history row, its audit entries, its event number), without waiting on the dead
  layer: a channel layer that is down never fails the write (workspace/live.py);
- when Redis is back, a page that reconnects the way case_room.mjs does (again, after
  a moment, if the socket fails) and resumes from the number it last saw gets the note
  it missed, once, and is live again;
- the first socket opened after Redis is back is joined at once, and a socket that the
  outage ended does not stay "present" in the room.

The server process restarts (tests.servers: Daphne on the test database; on SQLite it
has the in-memory channel layer, on PostgreSQL + Redis the shared one from REDIS_URL):
a `websockets` client holds a case room open; the process stops; a note is saved (by
the action, in this process) while it is down; a new process starts on the same port;
the client reconnects, resumes from its last number and receives the note exactly
once. With a shared layer, notes saved before the stop and after the restart must
also arrive live, once.

Every test is transactional: the consumers and the servers read committed data.
"""

import asyncio
import datetime
import json
import logging
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
import redis.exceptions
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from casenotes import events
from casenotes.consumers import CLOSE_LAYER_DOWN
from casenotes.models import CaseEvent, CaseNote, RoomPresence
from tests.casenotes.rooms import Rooms, Tab
from tests.factories import PASSWORD
from tests.servers import daphne_server, free_port

pytestmark = pytest.mark.django_db(transaction=True)

#: How long a delivery, a start or a stop may take before the test fails.
TIMEOUT = 10.0
#: Frames read while waiting for one (presence updates come and go).
MAX_FRAMES = 200
#: Attempts a page makes to reconnect before the test gives up on it.
RECONNECT_ATTEMPTS = 5


# --- a private Redis ---------------------------------------------------------------------

class RedisServer:
    """One `redis-server` on 127.0.0.1:`port`, nothing persisted, which the test can stop
    and start again on the same port."""

    def __init__(self, binary: str, port: int, workdir: Path):
        self.binary, self.port, self.workdir = binary, port, workdir
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = workdir / f"redis-{port}.log"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + TIMEOUT
        while not self.answers():
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"redis-server exited early: {self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start: {self.tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert not self.answers(), "redis-server still answering after it stopped"

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else "(no log)"


@pytest.fixture
def redis_server(tmp_path):
    """A private Redis, always stopped at the end. Without the binary the test is
    skipped with the reason, and WORKSPACE_STRICT_SKIPS=1 (conftest.py) makes that
    skip a failure."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs the redis-server binary on PATH (to stop and restart a private Redis)")
    server = RedisServer(binary, free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def layers_on(redis_url: str) -> dict:
    """CHANNEL_LAYERS as workspace/settings/base.py builds them for REDIS_URL, with a
    prefix of this test's own."""
    return {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": redis_url, "max_connections": 1000,
                       "retry_on_error": [redis.exceptions.ConnectionError]}],
            "capacity": 1500,
            "expiry": 30,
            "symmetric_encryption_keys": [django_settings.SECRET_KEY],
            "prefix": f"faults-{uuid.uuid4().hex[:12]}",
        },
    }}


@pytest.fixture
def private_layer(redis_server, settings):
    """The channel layer on the private Redis (setting CHANNEL_LAYERS drops the cached
    layer, here and again when the setting is restored)."""
    settings.CHANNEL_LAYERS = layers_on(redis_server.url)
    return redis_server


@pytest.fixture
async def rooms(world, private_layer):
    opened = Rooms()
    yield opened
    await opened.close_all()


# --- helpers ---------------------------------------------------------------------------------

def note_form(body: str) -> dict:
    """What the note form posts to finalise a note (tests/casenotes/test_views.py)."""
    moment = timezone.localtime() - datetime.timedelta(hours=1)
    return {
        "note_type": "home_visit", "occurred_day": str(moment.day),
        "occurred_month": str(moment.month), "occurred_year": str(moment.year),
        "occurred_time": moment.strftime("%H:%M"), "body": body,
        "sensitivity": "standard", "intent": "finalise",
    }


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


async def ended_by_outage(tab: Tab) -> int:
    """The close code of a socket whose consumer the outage ended (its layer receive
    fails; the consumer logs one warning and closes the socket itself). Fails if it does
    not end, or ends by raising."""
    app = tab.communicator.future
    done, _ = await asyncio.wait({app}, timeout=TIMEOUT)
    assert app in done, "the socket's consumer outlived its channel layer"
    tab.disconnected = True  # nothing left to close
    assert app.exception() is None, f"the consumer ended by raising {app.exception()!r}"
    return await tab.closed()


async def try_join(rooms: Rooms, case_id: int, user) -> tuple[Tab | None, BaseException | None]:
    """Open a socket and wait for it to be joined (its first presence list). Returns
    (tab, None), or (None, error) if the server side of the socket failed instead."""
    tab = await rooms.connect(case_id, user=user)
    app = tab.communicator.future
    joined = asyncio.ensure_future(tab.presence_update(TIMEOUT))
    done, _ = await asyncio.wait({joined, app}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if joined in done:
        joined.result()
        return tab, None
    joined.cancel()
    await asyncio.gather(joined, return_exceptions=True)
    assert app in done, "the socket was neither joined nor failed"
    tab.disconnected = True
    return None, app.exception() or AssertionError("the consumer ended without joining")


async def presence_row(channel_name: str):
    return await sync_to_async(
        lambda: RoomPresence.objects.filter(channel_name=channel_name).values_list("seen_at", flat=True)
        .first())()


# --- Redis down ------------------------------------------------------------------------------

async def test_with_redis_down_pages_and_saves_work_and_a_page_catches_up_when_it_is_back(
    world, rooms, private_layer, caplog
):
    case, worker, manager = world.case, world.social_worker, world.team_manager
    marker = f"outage-{uuid.uuid4().hex}"
    body = f"Saved while Redis was down. {marker}"

    # Before the outage: the manager's page is live on Redis and has seen `last_seen`.
    tab = await rooms.open(case.pk, manager, after=0)
    before = await sync_to_async(world.standard_note)(worker, body=f"Before the outage. {marker}")
    live = await tab.expect("event")
    assert (live["note"], live["level"]) == (before.pk, "full")
    last_seen = live["seq"]

    private_layer.stop()
    with caplog.at_level(logging.WARNING, logger="casenotes.consumers"):
        assert await ended_by_outage(tab) == CLOSE_LAYER_DOWN
    outage_lines = [r for r in caplog.records if "channel layer cannot be reached" in r.getMessage()]
    assert len(outage_lines) == 1 and outage_lines[0].levelno == logging.WARNING
    assert outage_lines[0].exc_info is None  # one line, no traceback

    # Pages load and the note form saves, at once, with everything a save writes.
    client = await sync_to_async(signed_in)(worker)
    page = await sync_to_async(client.get)(reverse("casenotes:case_detail", args=[case.pk]))
    assert page.status_code == 200
    assert f"Before the outage. {marker}" in page.content.decode()
    started = time.monotonic()
    response = await sync_to_async(client.post)(
        reverse("casenotes:note_create", args=[case.pk]), note_form(body))
    took = time.monotonic() - started
    assert response.status_code == 302, response.content.decode()[:2000]
    assert took < 5, f"the save waited {took:.1f}s on the dead channel layer"

    def saved() -> tuple[CaseNote, CaseEvent]:
        note = CaseNote.objects.get(body=body)
        assert response["Location"] == reverse("casenotes:note_detail", args=[case.pk, note.pk])
        assert note.is_final and note.author_id == worker.pk
        assert [(h.history_type, h.history_user_id, h.state) for h in note.history.all()] == [
            ("+", worker.pk, CaseNote.State.FINAL)]
        audited = list(AuditEvent.objects.filter(object_type="note", object_id=str(note.pk))
                       .order_by("id").values_list("action", "actor_id", "case_id"))
        assert audited == [(AuditAction.NOTE_CREATED, worker.pk, case.pk),
                           (AuditAction.NOTE_FINALISED, worker.pk, case.pk)]
        event = CaseEvent.objects.get(note=note)
        assert event.seq == last_seen + 1 == events.last_seq(case.pk)
        assert client.get(response["Location"]).status_code == 200  # the page it lands on
        return note, event

    note, event = await sync_to_async(saved)()

    private_layer.start()

    # The page reconnects (again, after a moment, while a socket fails, as case_room.mjs
    # does) and resumes from the number it had before the outage.
    again, failures = None, []
    for _ in range(RECONNECT_ATTEMPTS):
        again, error = await try_join(rooms, case.pk, manager)
        if again is not None:
            break
        failures.append(error)
        await asyncio.sleep(0.2)
    assert again is not None, f"no socket joined in {RECONNECT_ATTEMPTS} attempts: {failures!r}"
    missed, synced = await again.resume(last_seen)
    assert [(m["type"], m["note"], m["seq"], m["level"]) for m in missed] == [
        ("event", note.pk, event.seq, "full")]
    assert body in missed[0]["html"]
    assert synced["seq"] == event.seq
    # And it is live again: the next note arrives through Redis, the missed one not again.
    after = await sync_to_async(world.standard_note)(worker, body=f"After the outage. {marker}")
    live = await again.expect("event")
    assert (live["note"], live["seq"]) == (after.pk, event.seq + 1)
    await again.assert_nothing(0.5)


async def test_after_redis_comes_back_the_first_socket_opened_is_joined(world, rooms, private_layer):
    """A process that was connected to Redis before an outage serves the first socket
    opened after Redis is back: it is joined, not failed by a connection the outage
    killed."""
    case, manager = world.case, world.team_manager
    tab = await rooms.open(case.pk, manager, after=0)
    await tab.ping()

    private_layer.stop()
    await ended_by_outage(tab)
    private_layer.start()

    again, error = await try_join(rooms, case.pk, manager)
    assert error is None, (
        f"the first socket after Redis came back failed: {type(error).__name__}: {error}")
    replayed, _ = await again.resume(await sync_to_async(events.last_seq)(case.pk))
    assert replayed == []
    await again.ping()


async def test_a_socket_the_redis_outage_ended_does_not_stay_present(world, rooms, private_layer, settings):
    """A socket whose consumer the outage ended is gone: nothing may keep its presence
    row fresh (the periodic re-check refreshes it every LIVE_RECHECK_SECONDS), or the
    room would show its person as present for as long as the process lives."""
    settings.LIVE_RECHECK_SECONDS = 1
    case, manager = world.case, world.team_manager
    tab = await rooms.open(case.pk, manager, after=0)
    channel = await sync_to_async(
        lambda: RoomPresence.objects.get(case=case, user=manager).channel_name)()

    private_layer.stop()
    await ended_by_outage(tab)
    ended = await presence_row(channel)
    await asyncio.sleep(2.5)  # two re-check periods
    later = await presence_row(channel)
    assert later is None or later == ended, (
        f"the ended socket's presence is still being refreshed ({ended} -> {later})")


# --- the server process restarts ---------------------------------------------------------------

class Room:
    """A `websockets` client on a case room, as a page holds it, and every frame it got
    (presence lists aside)."""

    def __init__(self, ws):
        self.ws, self.frames = ws, []

    @classmethod
    async def open(cls, port: int, case_id: int, sessionid: str, after: int) -> tuple["Room", list, dict]:
        """Connect and resume; returns (room, frames before `synced`, synced)."""
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/cases/{case_id}/",
            origin=websockets.Origin(f"http://127.0.0.1:{port}"),
            additional_headers={"Cookie": f"sessionid={sessionid}"},
            open_timeout=TIMEOUT, close_timeout=2,
        )
        room = cls(ws)
        await room.send({"type": "resume", "after": after})
        replayed = await room.until("synced")
        return room, replayed[:-1], replayed[-1]

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def until(self, kind: str, timeout: float = TIMEOUT) -> list[dict]:
        """Every frame up to and including the first of type `kind`."""
        start = len(self.frames)
        deadline = time.monotonic() + timeout
        for _ in range(MAX_FRAMES):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=left))
            except TimeoutError:
                break
            if frame["type"] == "presence":
                continue
            self.frames.append(frame)
            if frame["type"] == kind:
                return self.frames[start:]
        raise AssertionError(f"no {kind!r} within {timeout}s; got {self.frames[start:]}")

    async def quiet(self, seconds: float) -> list[dict]:
        """Every frame (presence aside) arriving within `seconds`."""
        start = len(self.frames)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=left))
            except TimeoutError:
                break
            if frame["type"] != "presence":
                self.frames.append(frame)
        return self.frames[start:]

    async def close_code(self) -> int:
        """Wait for the server to close the socket; the code it sent."""
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(MAX_FRAMES):
                await asyncio.wait_for(self.ws.recv(), timeout=TIMEOUT)
        assert closed.value.rcvd is not None, "the connection dropped without a close frame"
        return closed.value.rcvd.code

    async def closed_by_server(self) -> None:
        """The server went away: the socket closes (the page would reconnect)."""
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(MAX_FRAMES):
                await asyncio.wait_for(self.ws.recv(), timeout=TIMEOUT)

    def about(self, note_id: int) -> list[dict]:
        return [f for f in self.frames if f["type"] == "event" and f.get("note") == note_id]


class Driver:
    """Runs the client's coroutines on one event loop, step by step, so that between
    steps the test uses the ORM and starts and stops servers with no loop running."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.rooms: list[Room] = []

    def run(self, coroutine, timeout: float = 20):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, timeout=timeout))

    def open(self, *args) -> tuple[Room, list, dict]:
        room, replayed, synced = self.run(Room.open(*args))
        self.rooms.append(room)
        return room, replayed, synced

    def close(self):
        try:
            for room in self.rooms:
                self.run(room.ws.close())
        finally:
            self.loop.close()


@pytest.fixture
def driver():
    driver = Driver()
    yield driver
    driver.close()


def test_a_client_reconnecting_after_a_server_restart_gets_what_it_missed_once(world, driver, tmp_path):
    case, worker, manager = world.case, world.social_worker, world.team_manager
    shared_layer = "redis" in django_settings.CHANNEL_LAYERS["default"]["BACKEND"].lower()
    sessionid = signed_in(manager).cookies[django_settings.SESSION_COOKIE_NAME].value
    marker = f"restart-{uuid.uuid4().hex}"
    port = free_port()

    with daphne_server(port=port, log_path=tmp_path / "daphne-first.log"):
        room, replayed, synced = driver.open(port, case.pk, sessionid, events.last_seq(case.pk))
        assert replayed == []
        last_seen = synced["seq"]
        if shared_layer:  # the socket is live through the shared layer
            live = world.standard_note(worker, body=f"Before the restart. {marker}")
            (frame,) = [f for f in driver.run(room.until("event")) if f["type"] == "event"]
            assert (frame["note"], frame["seq"]) == (live.pk, last_seen + 1)
            last_seen = frame["seq"]
    driver.run(room.closed_by_server())

    # Saved while no server is up (its live notice reaches nobody).
    missed = world.standard_note(worker, body=f"Saved while the server was down. {marker}")
    missed_seq = CaseEvent.objects.get(note=missed).seq
    assert missed_seq == last_seen + 1

    with daphne_server(port=port, log_path=tmp_path / "daphne-second.log"):
        again, replayed, synced = driver.open(port, case.pk, sessionid, last_seen)
        assert [(f["type"], f["note"], f["seq"], f["level"]) for f in replayed] == [
            ("event", missed.pk, missed_seq, "full")]
        assert f"Saved while the server was down. {marker}" in replayed[0]["html"]
        assert synced["seq"] == missed_seq
        # Exactly once: nothing more about it, before the server's answer to a ping
        # (messages are handled in order) nor in a quiet second after it.
        driver.run(again.send({"type": "ping"}))
        driver.run(again.until("pong"))
        if shared_layer:  # and live again: the next note arrives once, the missed one not again
            later = world.standard_note(worker, body=f"After the restart. {marker}")
            driver.run(again.until("event"))
            assert [f["seq"] for f in again.about(later.pk)] == [missed_seq + 1]
        driver.run(again.quiet(1.0))
        assert [f["seq"] for f in again.about(missed.pk)] == [missed_seq]
        assert [f for f in again.frames if f["type"] in {"error", "reload"}] == []


def test_a_page_on_a_real_server_is_closed_with_its_code_at_once_when_redis_goes(
        world, driver, redis_server, tmp_path):
    """The consumer closes the socket itself when Redis goes, and Daphne's WebSocket
    library accepts only 1000 and 3000-4999 from an application: with any other code the
    close is dropped, and the page would find out only when its ping went unanswered
    (45 s later) instead of reconnecting at once."""
    case, manager = world.case, world.team_manager
    sessionid = signed_in(manager).cookies[django_settings.SESSION_COOKIE_NAME].value
    port, log = free_port(), tmp_path / "daphne.log"

    with daphne_server(port=port, env={"REDIS_URL": redis_server.url}, log_path=log):
        room, _, _ = driver.open(port, case.pk, sessionid, events.last_seq(case.pk))
        started = time.monotonic()
        redis_server.stop()
        assert driver.run(room.close_code()) == CLOSE_LAYER_DOWN
        assert time.monotonic() - started < 5
    logged = log.read_text()
    assert "live connection closed: the channel layer cannot be reached" in logged
    assert "Exception inside application" not in logged

