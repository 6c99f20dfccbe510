"""The live discussion room: one WebSocket per open discussion page (`ws/discussions/<id>/`).

Connect: refused with CLOSE_REFUSED (anonymous, no such discussion, not a member of
its team, signed off or cancelled; all alike, all audited) or joined: attendance
recorded, presence broadcast. The connection joins the group of each agenda item whose
case this participant may see, and only those groups carry record content.

Every client message is rate-limited, schema-checked (discussions.messages) and
re-checks the session and team membership before it is handled; which agenda items'
cases the participant may see is re-read on every `access.recheck` notice (pushed when
access changes) and every LIVE_RECHECK_SECONDS, and every write is checked against its
case by the action.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit import context
from audit.actions import Pending, record_many
from audit.models import AuditAction
from casenotes.consumers import CLOSE_REFUSED, LiveSocket, RateLimit, request_context_for, session_user
from casenotes.messages import Invalid, parse
from casenotes.permissions import Action, NotFound, policy
from discussions import actions, selectors
from discussions.messages import adapter
from discussions.models import Attendance, Discussion, DiscussionPresence, Section
from teams.selectors import actor_for
from workspace import live

logger = logging.getLogger(__name__)

_OPEN = (Discussion.Status.SCHEDULED, Discussion.Status.IN_PROGRESS)
#: How long a periodic check waits for its probe to come back through the channel layer.
PROBE_SECONDS = 2.0


@dataclass(frozen=True)
class RoomAccess:
    """What one participant may see and write in one discussion, decided together."""

    user: object
    discussion: Discussion
    visible: frozenset[int]  # agenda item ids whose case they may see
    editable: frozenset[int]  # ... and add to
    sections: dict[int, tuple[int, str]]  # section id -> (item id, kind), visible items only


def room_access(user, discussion_id: int, *, joining: bool) -> RoomAccess | None:
    """A participant's access, or None. Only a scheduled or running discussion can be
    joined; a connection already open stays through sign-off, so a save that crosses it
    is answered with why it was refused rather than a closed socket."""
    discussion = Discussion.objects.select_related("team").filter(pk=discussion_id).first()
    if (user is None or discussion is None or (joining and discussion.status not in _OPEN)
            or not policy.can(user, Action.JOIN_DISCUSSION, discussion)):
        return None
    accesses = selectors.item_accesses(
        user, discussion.items.select_related("case__allocated_team").order_by("position"))
    visible = frozenset(item for item, access in accesses.items() if access is not None)
    editable = frozenset(item for item, access in accesses.items()
                         if access is not None and access.can_contribute)
    sections = {pk: (item, kind) for pk, item, kind in Section.objects.filter(
        item_id__in=visible).values_list("pk", "item_id", "kind")}
    return RoomAccess(user, discussion, visible, editable, sections)


class DiscussionRoomConsumer(LiveSocket):
    no_database = frozenset({"discussion.section", "discussion.actions", "discussion.kept",
                             "discussion.agenda", "discussion.status", "discussion.presence",
                             "discussion.editing", "discussion.probe"})
    probe: asyncio.Future | None = None

    async def connect(self):
        self.access: RoomAccess | None = None
        self.present = False
        self.resumed = False
        self.joined_groups: list[str] = []
        self.rate = RateLimit(settings.LIVE_RATE_BURST, settings.LIVE_RATE_PER_SECOND)
        self.recheck_task = None
        self.request_ctx = request_context_for(self.scope)
        context.activate(self.request_ctx)
        await self.accept()
        self.discussion_id = int(self.scope["url_route"]["kwargs"]["discussion_id"])
        # This connection's own group: a probe sent to it comes back while the layer
        # still has this connection in its groups (`_still_heard`).
        self.probe_group = live.discussion_probe_group(self.discussion_id, uuid.uuid4().hex)
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        access = await database_sync_to_async(self._join)(self.scope.get("user"))
        if access is None:
            await self.close(code=CLOSE_REFUSED)
            return
        self.present = True
        self.user_id = access.user.pk
        await self._use_access(access)
        await self._broadcast_presence()
        self.recheck_task = asyncio.ensure_future(self._recheck_periodically())

    def _join(self, user) -> RoomAccess | None:
        if user is None or not user.is_authenticated:
            policy.record_denied(None, "discussion", self.discussion_id, None, "live_join")
            return None
        access = room_access(session_user(self.session_key, user.pk), self.discussion_id,
                             joining=True)
        if access is None:
            policy.record_denied(user, "discussion", self.discussion_id, None, "live_join")
            return None
        try:
            actions.do_join_discussion(acting_user=access.user, discussion=access.discussion,
                                       channel_name=self.channel_name)
        except (ValidationError, NotFound):
            return None  # signed off or left the team a moment ago
        return access

    def _still_member(self) -> bool:
        """The check on every message: still signed in, in time, and a member of the
        discussion's team (three queries). Which items' cases they may see is re-read
        when access changes (pushed) and every LIVE_RECHECK_SECONDS; a write is checked
        against the case again by its action."""
        user = session_user(self.session_key, self.user_id)
        return user is not None and policy.can(user, Action.JOIN_DISCUSSION, self.access.discussion)

    def _current(self) -> RoomAccess | None:
        return room_access(session_user(self.session_key, self.user_id), self.discussion_id,
                           joining=False)

    async def _use_access(self, access: RoomAccess, *, rejoin: bool = False) -> None:
        """Adopt freshly checked access: join the groups of items now visible, leave
        those no longer visible (and tell the page to hide them). With `rejoin` (the
        periodic check), join every group again: a Redis that restarted forgot them."""
        hidden = (self.access.visible - access.visible) if self.access else frozenset()
        self.access = access
        wanted = [live.discussion_group(self.discussion_id), live.user_group(self.user_id),
                  self.probe_group]
        wanted += [live.discussion_item_group(self.discussion_id, item) for item in sorted(access.visible)]
        for group in self.joined_groups:
            if group not in wanted:
                await self.channel_layer.group_discard(group, self.channel_name)
        for group in wanted:
            if rejoin or group not in self.joined_groups:
                await self.channel_layer.group_add(group, self.channel_name)
        self.joined_groups = wanted
        for item in sorted(hidden):
            await self.send_json({"type": "hidden", "item": item})

    async def _refuse(self):
        if self.access is None:
            return
        self.access = None
        await self._leave()
        await self.close(code=CLOSE_REFUSED)

    async def _recheck(self, *, rejoin: bool = False) -> bool:
        access = await database_sync_to_async(self._current)()
        if access is None:
            await self._refuse()
            return False
        if self.access is not None:
            try:
                await self._use_access(access, rejoin=rejoin)
            except Exception:
                if not rejoin:
                    raise
                logger.warning("rejoining live groups failed", exc_info=True)
        return self.access is not None

    async def _recheck_periodically(self):
        while True:
            await asyncio.sleep(live.recheck_interval())
            try:
                missed = self.resumed and not await self._still_heard()
                if not await self._recheck(rejoin=True):
                    return
                await database_sync_to_async(actions.do_touch_presence)(channel_name=self.channel_name)
                if missed:
                    # The layer forgot this connection's groups (Redis restarted under
                    # it): what the room was sent meanwhile never came. The record as it
                    # stands, as on resume; the page merges it as it does a notice.
                    await self.send_json(await database_sync_to_async(self._snapshot)())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("periodic access re-check failed; closing")
                await self._refuse()
                return

    async def _still_heard(self) -> bool:
        """Whether the channel layer still has this connection in its groups: a probe
        sent to the connection's own group comes back. A Redis that restarted has
        forgotten every group; a layer that cannot be reached at all is not this check's
        to report (the connection's own channel fails and closes it)."""
        self.probe = asyncio.get_running_loop().create_future()
        try:
            await self.channel_layer.group_send(self.probe_group, {"type": "discussion.probe"})
            await asyncio.wait_for(asyncio.shield(self.probe), PROBE_SECONDS)
            return True
        except TimeoutError:
            return False
        except Exception:
            logger.warning("probing the channel layer failed", exc_info=True)
            return True
        finally:
            self.probe = None

    # --- leaving -------------------------------------------------------------------------
    async def disconnect(self, code):
        if self.recheck_task is not None:
            self.recheck_task.cancel()
        await self._leave()

    async def _leave(self):
        for group in self.joined_groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.warning("leaving group %s failed", group, exc_info=True)
        self.joined_groups = []
        if self.present:
            self.present = False
            try:
                await database_sync_to_async(actions.do_leave_discussion)(
                    channel_name=self.channel_name)
                await self._broadcast_presence()
            except Exception:
                logger.warning("leaving the discussion's presence failed", exc_info=True)

    # --- from the browser ------------------------------------------------------------------
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
            message = parse(text_data or "", adapter)
        except Invalid as invalid:
            await self._error(invalid.code, invalid.message)
            return
        if not self.resumed and message.type != "resume":
            await self._error("out_of_order", "Send resume before anything else.")
            return
        try:
            if not await database_sync_to_async(self._still_member)():
                await self._refuse()
                return
            await getattr(self, "on_" + message.type.replace(".", "_"))(message)
        except Exception:
            logger.exception("discussion message %s failed", message.type)
            await self._error("server_error", "Something went wrong. Nothing was saved; try again.")

    async def on_resume(self, message):
        """The record as it stands (what was missed while away is in it)."""
        state = await database_sync_to_async(self._snapshot)()
        await self.send_json(state)
        self.resumed = True
        await self.send_json({"type": "synced", "seq": 0})

    def _snapshot(self) -> dict:
        access = self.access
        state = selectors.snapshot(access.discussion, set(access.visible))
        actor = actor_for(access.user)
        record_many([Pending(actor=actor, action=AuditAction.DISCUSSION_CASE_VIEWED,
                             object_type="discussion", object_id=self.discussion_id,
                             case_id=case_id, reason="live", ctx=self.request_ctx)
                     for case_id in access.discussion.items.filter(pk__in=access.visible)
                     .values_list("case_id", flat=True)])
        return state

    async def on_ping(self, message):
        await database_sync_to_async(actions.do_touch_presence)(channel_name=self.channel_name)
        await self.send_json({"type": "pong"})

    async def on_editing(self, message):
        where = self.access.sections.get(message.section)
        if where is None:
            await self._error("not_found", "That section cannot be found.")
            return
        item, kind = where
        user = self.access.user
        await self.channel_layer.group_send(live.discussion_item_group(self.discussion_id, item), {
            "type": "discussion.editing", "item": item, "section": kind, "user": self.user_id,
            "label": _label(user), "active": message.active,
        })

    async def on_section_save(self, message):
        await self.send_json(await database_sync_to_async(self._save_section)(message))

    def _save_section(self, message) -> dict:
        access = self.access
        where = access.sections.get(message.section)
        section = Section.objects.select_related("item__discussion", "item__case").filter(
            pk=message.section).first() if where and where[0] in access.editable else None
        if section is None:
            policy.record_denied(access.user, "discussion_section", message.section, None,
                                 "live_section_save")
            return {"type": "error", "code": "not_found", "message": "That section cannot be found.",
                    "section": message.section}
        try:
            result = actions.do_save_section(acting_user=access.user, section=section,
                                             text=message.text, version=message.version,
                                             base_text=message.base)
        except ValidationError as error:
            return {"type": "section.invalid", "section": section.pk,
                    "message": " ".join(error.messages)}
        except NotFound:
            return {"type": "error", "code": "not_found", "message": "That section cannot be found.",
                    "section": section.pk}
        saved = result.section
        return {"type": "section.saved", "outcome": result.outcome, "section": saved.pk,
                "item": saved.item_id, "version": saved.version, "text": saved.text,
                "kept": result.kept.pk if result.kept else None,
                "saved_at": timezone.localtime(saved.updated_at).strftime("%H:%M:%S")}

    # --- from the channel layer (no database access) ---------------------------------------
    def _sees(self, event) -> bool:
        return self.access is not None and event.get("item") in self.access.visible

    async def discussion_section(self, event):
        if self._sees(event):
            await self.send_json({**event, "type": "section"})

    async def discussion_actions(self, event):
        if self._sees(event):
            await self.send_json({**event, "type": "actions"})

    async def discussion_kept(self, event):
        if self._sees(event):
            await self.send_json({**event, "type": "kept"})

    async def discussion_editing(self, event):
        if self._sees(event) and event["user"] != self.user_id:
            await self.send_json({**event, "type": "editing"})

    async def discussion_agenda(self, event):
        if self.access is not None:
            message = {"type": "agenda", "current": event["current"]}
            if event.get("removed"):
                message["removed"] = event["removed"]
            await self.send_json(message)

    async def discussion_status(self, event):
        if self.access is not None:
            await self.send_json({"type": "status", "status": event["status"],
                                  "current": event["current"]})

    async def discussion_presence(self, event):
        if self.access is not None:
            await self.send_json({"type": "presence", "people": event["people"]})

    async def access_recheck(self, event):
        if self.access is not None:
            await self._recheck()

    async def discussion_probe(self, event):
        if self.probe is not None and not self.probe.done():
            self.probe.set_result(True)

    async def _broadcast_presence(self):
        people = await database_sync_to_async(_presence)(self.discussion_id)
        await self.channel_layer.group_send(live.discussion_group(self.discussion_id),
                                            {"type": "discussion.presence", "people": people})


def _label(user) -> str:
    return user.get_full_name() or user.get_username()


def _presence(discussion_id: int) -> list[dict]:
    """Who has the room open now, each person once, as they were recorded joining."""
    fresh = timezone.now() - actions.PRESENCE_TTL
    here = DiscussionPresence.objects.filter(discussion_id=discussion_id, seen_at__gte=fresh) \
        .values("user_id")
    rows = (Attendance.objects.filter(discussion_id=discussion_id, left_at__isnull=True,
                                      user_id__in=here)
            .order_by("display_name", "user_id")
            .values_list("user_id", "display_name", "role_label", "agency_label"))
    seen, people = set(), []
    for user_id, name, role, agency in rows:
        if user_id not in seen:
            seen.add(user_id)
            people.append({"user": user_id, "name": name, "role": role, "agency": agency})
    return people
