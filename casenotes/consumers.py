"""The live case room: one WebSocket per open case page (`ws/cases/<id>/`).

Connect: refused with CLOSE_REFUSED (anonymous, no such case, no access, foreign
origin; all alike, all audited) or joined: presence recorded and broadcast.
Every client message is rate-limited, schema-checked (casenotes.messages) and
re-checks access (including that the session still exists) before it is handled.
Group notices are delivered without touching the database: each one is already
addressed to an audience this connection belongs to (casenotes.events).
"""

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from datetime import timedelta
from importlib import import_module

import redis.exceptions
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from audit import context
from audit.actions import Pending
from audit.models import AuditAction
from casenotes import actions, deliveries, events, messages, relay
from casenotes.models import Case, CaseNote, Person, RoomPresence
from casenotes.permissions import NoteLevel, NotFound, policy
from teams import two_factor
from workspace import live, sessions

logger = logging.getLogger(__name__)

#: What a room's audiences are sent, handed to each connection by the process's relay
#: (casenotes/relay.py) without Channels' per-message database hop (a note delivery's
#: audit entry is written in a batch, casenotes/deliveries.py).
ROOM_NOTICES = frozenset({"case.event", "room.presence", "room.writing"})

try:  # what Daphne raises when sending to a socket the browser has closed
    from autobahn.exception import Disconnected as SocketGone
except ImportError:  # pragma: no cover (another ASGI server)
    SocketGone = ConnectionError

#: The one close code for every refusal and for access ending: a client cannot tell a
#: missing case from a forbidden one.
CLOSE_REFUSED = 4403
#: The channel layer (Redis) cannot be reached: the page reconnects with its backoff and
#: catches up from the database once it can. (An application's close code must be 1000
#: or 3000-4999: Daphne's WebSocket library refuses 1011 from it.)
CLOSE_LAYER_DOWN = 4503
#: What channels-redis raises when Redis is down or restarting.
LAYER_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
PRESENCE_TTL = timedelta(seconds=90)


class RateLimit:
    """A token bucket: `burst` messages at once, refilled at `per_second`."""

    def __init__(self, burst: int, per_second: float):
        self.burst, self.per_second = burst, per_second
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def request_context_for(scope) -> context.RequestContext:
    headers = dict(scope.get("headers") or [])
    client = scope.get("client") or (None, None)
    return context.RequestContext(
        request_id=uuid.uuid4().hex,
        client_ip=context.client_ip(client[0], headers.get(b"x-forwarded-for", b"").decode("latin1")),
        user_agent=headers.get(b"user-agent", b"").decode("latin1")[:256],
    )


def session_user(session_key: str | None, user_id):
    """The user of a socket as of now: the session that opened it still signed in as
    them (not logged out, not timed out, password unchanged) and the account active;
    else None."""
    if not session_key or not user_id:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if str(store.get(SESSION_KEY)) != str(user_id) or sessions.expired(store) is not None:
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not constant_time_compare(
        store.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    ):
        return None
    if two_factor.needed(user) and not two_factor.verified_session(store, user):
        return None  # signed in with the password only: the second step comes first
    return user


class LiveSocket(AsyncWebsocketConsumer):
    """What every live room's socket shares: JSON frames, error frames, and group
    notices in `no_database` handled without Channels' per-message database hop."""

    #: Notice types whose handlers never touch the database.
    no_database: frozenset[str] = frozenset()
    recheck_task = None
    present = False

    async def __call__(self, scope, receive, send):
        """If the consumer dies (the channel layer failing under it, say), Channels never
        calls `disconnect`: clean up here, so no re-check loop keeps a dead connection
        present and in its groups.

        Redis down is an outage, not a fault in this code: every open connection of the
        process ends at once, each with one warning line (not a traceback) and the close
        code CLOSE_LAYER_DOWN. Anything else still reaches the server as an error."""
        layer_down = None
        try:
            await super().__call__(scope, receive, send)
        except LAYER_DOWN as error:
            layer_down = error
            logger.warning("live connection closed: the channel layer cannot be reached (%s: %s)",
                           type(error).__name__, error)
        finally:
            if self.recheck_task is not None:
                self.recheck_task.cancel()
            if self.present:
                try:
                    await self.disconnect(CLOSE_LAYER_DOWN)
                except Exception:
                    logger.warning("cleaning up a failed live connection failed", exc_info=True)
        if layer_down is not None:
            try:
                await send({"type": "websocket.close", "code": CLOSE_LAYER_DOWN})
            except SocketGone:
                pass  # the browser has gone already
            except Exception:
                logger.warning("closing a live connection after the channel layer failed "
                               "did not work", exc_info=True)

    async def _error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})

    async def send_json(self, content: dict):
        await self.send_text(json.dumps(content))

    async def send_text(self, text: str):
        try:
            await self.send(text_data=text)
        except SocketGone:
            # The browser has gone; the disconnect that follows cleans up.
            pass

    async def dispatch(self, message):
        """Group notices that need no database skip Channels' per-message hop to the
        database thread (to close stale connections), which would serialise every
        delivery in the process behind it. All database work here goes through
        database_sync_to_async, which closes stale connections itself."""
        if message["type"] in self.no_database:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)


class CaseRoomConsumer(LiveSocket):
    no_database = ROOM_NOTICES

    async def connect(self):
        self.access = None
        self.resumed = False
        self.present = False
        self.joined_groups: list[str] = []
        self.delivered: deque[int] = deque(maxlen=512)
        self.note_seq: dict[int, int] = {}  # each note's newest event sent here
        self.checked_to = 0  # the event number the periodic catch-up looks after
        self.told_checked_to = 0  # the last of those the page was told (its resume point)
        self.rate = RateLimit(settings.LIVE_RATE_BURST, settings.LIVE_RATE_PER_SECOND)
        self.recheck_task = None
        self.next_check_at = None  # the event loop's time of the next periodic check
        self.check_sooner = asyncio.Event()  # set when an earlier end of access is learnt
        self.request_ctx = request_context_for(self.scope)
        context.activate(self.request_ctx)
        await self.accept()
        self.case_id = int(self.scope["url_route"]["kwargs"]["case_id"])
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        self.access = await database_sync_to_async(self._join)(self.scope.get("user"))
        if self.access is None:
            await self.close(code=CLOSE_REFUSED)
            return
        self.present = True
        self.user_id = self.access.user.pk
        await self._use_access(self.access)
        await self._broadcast_presence()
        self.recheck_task = asyncio.ensure_future(self._recheck_periodically())

    async def _use_access(self, access, *, rejoin: bool = False) -> None:
        """Adopt freshly checked access, moving this connection between audience groups
        if it changed (a manager who steps down, a move to another agency): the groups
        decide who receives full note content. With `rejoin` (the periodic check), join
        every group again: a Redis that restarted has forgotten them all."""
        self.access = access
        wanted = self._groups(access)
        for group in self.joined_groups:
            if group not in wanted:
                await self._discard(group)
        for group in wanted:
            if rejoin or group not in self.joined_groups:
                await self._add(group)
        self.joined_groups = wanted

    async def _add(self, group: str) -> None:
        """A room's audience is joined through the process's relay; the user's own group
        (access re-checks) by this connection's channel."""
        if group == live.user_group(self.user_id):
            await self.channel_layer.group_add(group, self.channel_name)
        else:
            await relay.for_this_loop(self.channel_layer, hand_to).join(group, self)

    async def _discard(self, group: str) -> None:
        if group == live.user_group(self.user_id):
            await self.channel_layer.group_discard(group, self.channel_name)
        else:
            await relay.for_this_loop(self.channel_layer, hand_to).leave(group, self)

    def _groups(self, access) -> list[str]:
        groups = [live.case_group(self.case_id), live.viewer_group(self.case_id, self.user_id),
                  live.user_group(self.user_id)]
        if _reading_agency(access) is not None:
            groups.append(live.agency_group(self.case_id, access.agency_id))
        if access.is_case_manager:
            groups.append(live.managers_group(self.case_id))
        return groups

    # --- access ------------------------------------------------------------------------
    def _join(self, user):
        if user is None or not user.is_authenticated:
            policy.record_denied(None, "case", self.case_id, None, "live_join")
            return None
        access = self._current_access(user_id=user.pk)
        if access is None:
            policy.record_denied(user, "case", self.case_id,
                                 Case.objects.filter(pk=self.case_id).values_list("pk", flat=True).first(),
                                 "live_join")
            return None
        actions.do_join_room(acting_user=access.user, access=access, channel_name=self.channel_name)
        return access

    def _current_access(self, user_id=None):
        """Access as of now: the session still signed in as this user (not logged out,
        password unchanged), the account active, and the policy's answer on the case."""
        user = session_user(self.session_key, user_id or self.user_id)
        if user is None:
            return None
        case = Case.objects.select_related("allocated_team").filter(pk=self.case_id).first()
        return policy.case_access(user, case) if case else None

    async def _refuse(self):
        if self.access is None:
            return  # already refused
        self.access = None
        await self._leave_groups()
        await self._leave_room()
        await self.close(code=CLOSE_REFUSED)

    async def _recheck_periodically(self):
        """The safety net behind pushed re-checks, and the end of access that ends by
        time alone (break-glass, a hand-over, a keyworker's end date): the next check is
        due at that moment if it comes before the regular one."""
        loop = asyncio.get_running_loop()
        while True:
            wait = _seconds_to_next_check(self.access)
            self.next_check_at = loop.time() + wait
            self.check_sooner.clear()
            try:
                await asyncio.wait_for(self.check_sooner.wait(), timeout=wait)
                continue  # access (adopted already) now ends sooner: plan the wait again
            except TimeoutError:
                pass
            try:
                access = await database_sync_to_async(self._current_access)()
                if access is None:
                    await self._refuse()
                    return
                if self.access is None:
                    return
                try:
                    await self._use_access(access, rejoin=True)
                except Exception:
                    # The channel layer is down: live notices wait for it; the catch-up
                    # below (and the next check) fill in from the database.
                    logger.warning("rejoining live groups failed", exc_info=True)
                await database_sync_to_async(actions.do_touch_presence)(channel_name=self.channel_name)
                await self._catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("periodic access re-check failed; closing")
                await self._refuse()
                return

    # --- leaving -----------------------------------------------------------------------
    async def disconnect(self, code):
        """Clean up step by step: a failing step (Redis busy or down) must not leave the
        presence row or the other group memberships behind."""
        if self.recheck_task is not None:
            self.recheck_task.cancel()
        await self._leave_groups()
        try:
            await self._leave_room()
        except Exception:
            logger.warning("leaving the room's presence failed", exc_info=True)

    async def _leave_room(self):
        """Remove this connection from the room's presence (on leaving and on refusal)."""
        if self.present:
            self.present = False
            await database_sync_to_async(actions.do_leave_room)(channel_name=self.channel_name)
            try:
                await self._broadcast_presence()
            except Exception:
                logger.warning("presence update not sent", exc_info=True)

    async def _leave_groups(self):
        for group in self.joined_groups:
            try:
                await self._discard(group)
            except Exception:
                # Left behind, the membership expires with the layer's group_expiry.
                logger.warning("leaving group %s failed", group, exc_info=True)
        self.joined_groups = []

    # --- from the browser ----------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        if self.access is None:
            return
        if bytes_data is not None:
            await self._error("binary", "Send messages as JSON text.")
            return
        if not self.rate.take():
            await self._error("rate_limited", "Too many messages: wait a few seconds and try again.")
            return
        try:
            message = messages.parse(text_data or "")
        except messages.Invalid as invalid:
            await self._error(invalid.code, invalid.message)
            return
        if not self.resumed and message.type != "resume":
            await self._error("out_of_order", "Send resume before anything else.")
            return
        try:
            access = await database_sync_to_async(self._current_access)()
            if access is None:
                await self._refuse()
                return
            await self._use_access(access)
            handler = getattr(self, "on_" + message.type.replace(".", "_"))
            await handler(message)
        except Exception:
            logger.exception("live message %s failed", message.type)
            await self._error("server_error", "Something went wrong. Nothing was saved; try again.")

    async def on_resume(self, message: messages.Resume):
        replay = await database_sync_to_async(events.replay)(self.access, message.after)
        await self._send_replay(replay)
        self.resumed = True
        # The page resumes from here next time: every event up to it that this viewer
        # may see has been sent (or is sent again then), whatever came live since.
        self.told_checked_to = self.checked_to
        await self.send_json({"type": "synced", "seq": self.checked_to})

    async def _catch_up(self):
        """With every periodic re-check: send what this connection should have had and
        has not (a notice lost while Redis restarted, which also forgets the groups, or
        a delivery that could not be audited), from the database. Each event is sent
        once (`delivered`)."""
        if not self.resumed or self.access is None:
            return
        replay = await database_sync_to_async(events.replay)(
            self.access, self.checked_to, sent=tuple(self.delivered))
        await self._send_replay(replay)
        if self.checked_to != self.told_checked_to:
            # Where the page resumes if this connection drops: never past a notice that
            # did not arrive (a live notice only moves the page on display, not this).
            self.told_checked_to = self.checked_to
            await self.send_json({"type": "checkpoint", "seq": self.checked_to})

    async def _send_replay(self, replay: events.Replay):
        """Send a replay (or the reload instruction it holds instead); the next catch-up
        starts before anything that could not be sent."""
        failed = await self._deliver_many(replay.messages)
        if replay.reload:
            await self.send_json({"type": "reload", "message": "Much has changed since this "
                                  "page was loaded. Reload the page to see it all."})
        self.checked_to = min(failed) - 1 if failed else replay.checked_to

    async def on_writing(self, message: messages.Writing):
        membership = self.access.membership
        label = self.access.user.first_name or self.access.user.get_username()
        if membership is not None:
            label = f"{label} ({membership.agency.short_name})"
        await live.group_send(self.channel_layer, live.case_group(self.case_id), {
            "type": "room.writing", "user": self.user_id, "label": label, "active": message.active,
        })

    async def on_ping(self, message: messages.Ping):
        await database_sync_to_async(actions.do_touch_presence)(channel_name=self.channel_name)
        await self.send_json({"type": "pong"})

    async def on_draft_save(self, message: messages.DraftSave):
        await self.send_json(await database_sync_to_async(self._save_draft)(message))

    def _save_draft(self, message: messages.DraftSave) -> dict:
        access, case = self.access, self.access.case
        people = list(Person.objects.filter(case=case, pk__in=message.people))
        readers = list(get_user_model().objects.filter(pk__in=message.readers))
        if len(people) != len(set(message.people)):
            return _invalid({"people": ["Choose people from this family only."]})
        if len(readers) != len(set(message.readers)):
            return _invalid({"readers": ["Named readers must be people working on this case."]})
        restricted_person = None
        if message.restricted_person is not None:
            restricted_person = Person.objects.filter(case=case, pk=message.restricted_person).first()
            if restricted_person is None:
                return _invalid({"restricted_person": [
                    "Choose an adult in this family with a specialist agency."]})
        fields = dict(
            note_type=message.note_type, occurred_at=message.occurred(), body=message.body,
            sensitivity=message.sensitivity, is_significant=message.is_significant,
            people=people, readers=readers, restricted_person=restricted_person,
        )
        keep_restricted = "restricted_person" not in message.model_fields_set
        try:
            retried = message.note is None and message.client_ref and CaseNote.objects.filter(
                case=case, author=access.user, client_ref=message.client_ref).first()
            if retried:
                # The first save arrived but its reply did not: this is the next version
                # of that draft (a conflict if it has moved on since).
                if keep_restricted:
                    fields["restricted_person"] = retried.restricted_person
                note = actions.do_update_draft(acting_user=access.user, note=retried,
                                               expected_version=1, **fields)
            elif message.note is None:
                note = actions.do_create_note(acting_user=access.user, case=case,
                                              client_ref=message.client_ref or "", **fields)
            else:
                note = CaseNote.objects.filter(pk=message.note, case=case).first()
                if note is None:
                    raise NotFound("Note")
                if keep_restricted:
                    fields["restricted_person"] = note.restricted_person
                note = actions.do_update_draft(acting_user=access.user, note=note,
                                               expected_version=message.version or 0, **fields)
        except actions.StaleVersion as stale:
            current = stale.current
            if _holds(current, fields):
                # This very text was saved and only the reply was lost (a save sent again,
                # or one whose reply went with a dropped connection): it is saved.
                note = current
            else:
                return {"type": "draft.conflict", "note": current.pk, "version": current.version,
                        "body": current.body,
                        "message": "This draft was changed elsewhere. Both texts are kept: "
                                   "choose what to keep, then save again."}
        except NotFound:
            # Missing and forbidden alike, and audited like the page's refusal.
            policy.record_denied(access.user, "note" if message.note else "case",
                                 message.note or case.pk, case.pk, "live_draft_save", access)
            return {"type": "error", "code": "not_found", "message": "That note cannot be found."}
        except ValidationError as error:
            return _invalid(error.message_dict if hasattr(error, "error_dict")
                            else {"__all__": error.messages})
        return {"type": "draft.saved", "note": note.pk, "version": note.version,
                "saved_at": timezone.localtime(note.updated_at).strftime("%H:%M:%S")}

    # --- from the channel layer (no database access) ------------------------------------
    def _wants(self, event: dict) -> bool:
        """Whether this connection takes a room notice: one about a note only at the
        level the policy gives its current access (events.level_for, no query), so a
        viewer with the full entry drops the room's placeholder, and a note this access
        may not read in full, whatever group it came through, is not sent."""
        if "level" not in event:
            return True  # no note content (a case changed)
        wanted = NoteLevel.FULL if event["level"] == "full" else NoteLevel.PLACEHOLDER
        return events.level_for(self.access, event) == wanted

    async def case_event(self, notice: dict):
        """Room notices come through the relay; one sent to this connection's own
        channel is handled the same way."""
        await hand_to([(notice, [self])])

    room_presence = room_writing = case_event

    async def _show_presence(self, event):
        await self.send_json({"type": "presence", "people": event["people"]})

    async def _show_writing(self, event):
        if event["user"] != self.user_id:
            await self.send_json({"type": "writing", "label": event["label"],
                                  "user": event["user"], "active": event["active"]})

    async def access_recheck(self, event):
        if self.access is None:
            return  # refused already: never re-admitted on this connection
        access = await database_sync_to_async(self._current_access)()
        if access is None:
            await self._refuse()
        elif self.access is not None:
            await self._use_access(access)
            # A pushed change may bring the end of access nearer than the next check.
            until_end = _seconds_to_end(access)
            if until_end is not None and self.next_check_at is not None and (
                    asyncio.get_running_loop().time() + until_end < self.next_check_at):
                self.check_sooner.set()

    # --- helpers -----------------------------------------------------------------------
    async def _deliver_many(self, events_: list[dict]) -> set[int]:
        """Deliver events to this connection (`deliver`); the numbers of those that
        could not be audited, so were not sent."""
        return {event["seq"] for _, event in await deliver([(self, e) for e in events_])}

    def _delivery_entry(self, event: dict):
        if event.get("level") not in ("full", "placeholder") or "note" not in event:
            return None  # a notice without content (the case changed, a note withdrawn)
        return Pending(actor=self.access.actor, action=AuditAction.LIVE_DELIVERED,
                       object_type="note", object_id=event["note"], case_id=self.case_id,
                       reason=f"event {event['seq']}, {event['level']}", ctx=self.request_ctx)

    async def _broadcast_presence(self):
        people = await database_sync_to_async(_presence)(self.case_id)
        await live.group_send(self.channel_layer, live.case_group(self.case_id),
                              {"type": "room.presence", "people": people})


async def hand_to(handed: list[tuple[dict, list[CaseRoomConsumer]]]) -> None:
    """What the process's relay hands out (casenotes/relay.py): (notice, connections)
    pairs, in order. Presence and writing go straight out; the case events each
    connection may have are delivered together (`deliver`: one audit batch)."""
    pairs = []
    for notice, connections in handed:
        kind = notice.get("type")
        for connection in connections:
            if connection.access is None:
                continue  # refused: a notice already on its way is dropped
            if kind == "room.presence":
                await _each(connection._show_presence(notice))
            elif kind == "room.writing":
                await _each(connection._show_writing(notice))
            elif kind == "case.event" and connection._wants(notice):
                pairs.append((connection, notice))
    await deliver(pairs)


async def deliver(pairs: list[tuple[CaseRoomConsumer, dict]]) -> list[tuple[CaseRoomConsumer, dict]]:
    """Send each (connection, event) not sent on that connection before, in order. Each
    event carrying a note (in full or as a placeholder) is audited first, all of them in
    one batch with the process's other deliveries; one that could not be audited is not
    sent. Returns the pairs not sent for that reason (the catch-up tries them again).
    An event's frame is encoded once, however many connections it goes to."""
    fresh = [(c, e) for c, e in pairs if c.access is not None and e["seq"] not in c.delivered
             and not _older(c, e)]
    entries = [c._delivery_entry(e) for c, e in fresh]
    written = iter(await deliveries.for_this_loop().record([x for x in entries if x is not None]))
    failed, frames = [], {}
    for (connection, event), entry in zip(fresh, entries, strict=True):
        if entry is not None and not next(written):
            failed.append((connection, event))
            continue
        if connection.access is None or event["seq"] in connection.delivered or _older(
                connection, event):
            continue
        connection.delivered.append(event["seq"])
        if "note" in event:
            connection.note_seq[event["note"]] = event["seq"]
        frame = frames.get(id(event))
        if frame is None:
            frame = frames[id(event)] = json.dumps({"type": "event", **{
                k: v for k, v in event.items() if k not in {"type", "facts", "group"}}})
        await _each(connection.send_text(frame))
    return failed


def _older(connection: CaseRoomConsumer, event: dict) -> bool:
    """An event about a note older than one of it already sent on this connection: a
    catch-up read from the database just before a newer notice came live. Sending it
    would put the note's older state back on the page."""
    return "note" in event and connection.note_seq.get(event["note"], -1) > event["seq"]


async def _each(sending) -> None:
    """One connection's send, among many: a fault in it must not stop the others'."""
    try:
        await sending
    except Exception:
        logger.exception("a live notice could not be sent on a connection")


def _reading_agency(access) -> int | None:
    """The agency whose restricted notes this connection receives in full: none under
    break-glass, which sees standard content only."""
    return None if access.is_break_glass else access.agency_id


def _seconds_to_end(access) -> float | None:
    """Seconds until a moment after access ends by time alone (so a check then sees it
    ended), or None when it does not."""
    if access is None or access.expires_at is None:
        return None
    return (access.expires_at - timezone.now()).total_seconds() + 0.05


def _seconds_to_next_check(access) -> float:
    regular = live.recheck_interval()
    until_end = _seconds_to_end(access)
    return regular if until_end is None else max(0.05, min(regular, until_end))


def _holds(draft: CaseNote, fields: dict) -> bool:
    """Whether `draft` as saved is exactly what an autosave sends (`fields`, as passed to
    the actions): then that save arrived before, and only its reply was lost."""
    return (
        (draft.note_type, draft.occurred_at, draft.body, draft.sensitivity,
         draft.is_significant, draft.restricted_person_id)
        == (fields["note_type"], fields["occurred_at"], (fields["body"] or "").strip(),
            fields["sensitivity"], bool(fields["is_significant"]),
            fields["restricted_person"].pk if fields["restricted_person"] else None)
        and set(draft.people.values_list("pk", flat=True)) == {p.pk for p in fields["people"]}
        and set(draft.readers.values_list("pk", flat=True)) == {r.pk for r in fields["readers"]}
    )


def _invalid(errors: dict) -> dict:
    return {"type": "draft.invalid", "errors": errors,
            "message": "Not saved yet: " + " ".join(m for ms in errors.values() for m in ms)}


def _presence(case_id: int) -> list[dict]:
    """Who has the room open, each person once."""
    rows = (RoomPresence.objects.filter(case_id=case_id, seen_at__gte=timezone.now() - PRESENCE_TTL)
            .order_by("display_name", "user_id")
            .values_list("user_id", "display_name", "role_label", "agency_label"))
    seen, people = set(), []
    for user_id, name, role, agency in rows:
        if user_id not in seen:
            seen.add(user_id)
            people.append({"user": user_id, "name": name, "role": role, "agency": agency})
    return people


class RefuseConnection(AsyncWebsocketConsumer):
    """Any socket path that is not a case room: refused with the one close code."""

    async def connect(self):
        await self.accept()
        await self.close(code=CLOSE_REFUSED)
