"""The live notices of a discussion room, queued by the actions for after commit.

Record content (section text, actions, kept texts) goes only to an agenda item's own
group, whose members the consumer has checked may see that item's case; the whole
room gets only what every participant may see: the agenda position, the status and
who is there (live.discussion_group / live.discussion_item_group).
"""

from django.template.loader import render_to_string

from discussions.models import AgendaItem, Discussion, Section
from workspace import live


def section_message(section: Section, by=None) -> dict:
    return {
        "type": "discussion.section", "item": section.item_id, "section": section.kind,
        "version": section.version, "text": section.text,
        "by": getattr(by, "pk", None),
        "by_label": (by.get_full_name() or by.get_username()) if by is not None else "",
    }


def render_actions(item: AgendaItem) -> str:
    return render_to_string("discussions/_actions.html", {
        "item": item, "actions": item.actions.select_related("owner").order_by("due_on", "pk"),
        "discussion": item.discussion,
    })


def render_kept(section: Section) -> str:
    return render_to_string("discussions/_kept.html", {
        "section": section, "item": section.item, "discussion": section.item.discussion,
        "kept_texts": section.kept_texts.filter(resolution="").select_related("author"),
    })


def _item_group(item: AgendaItem) -> str:
    return live.discussion_item_group(item.discussion_id, item.pk)


def section_on_commit(section: Section, by) -> None:
    live.send_on_commit(_item_group(section.item), section_message(section, by))


def actions_on_commit(item: AgendaItem) -> None:
    live.send_on_commit(_item_group(item), {
        "type": "discussion.actions", "item": item.pk, "html": render_actions(item)})


def kept_on_commit(section: Section) -> None:
    live.send_on_commit(_item_group(section.item), {
        "type": "discussion.kept", "item": section.item_id, "section": section.kind,
        "html": render_kept(section)})


def agenda_on_commit(discussion: Discussion, *, removed: int | None = None) -> None:
    """The item now discussed, and (during the meeting) an item taken off the agenda."""
    message = {"type": "discussion.agenda", "current": discussion.current_item_id}
    if removed is not None:
        message["removed"] = removed
    live.send_on_commit(live.discussion_group(discussion.pk), message)


def status_on_commit(discussion: Discussion) -> None:
    live.send_on_commit(live.discussion_group(discussion.pk), {
        "type": "discussion.status", "status": discussion.status,
        "current": discussion.current_item_id})
