"""The schema of every message a browser may send to a discussion room; anything else
is refused with an error frame before it reaches an action (casenotes.messages.parse)."""

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from casenotes.messages import Id, Ping, Resume, _Message
from discussions.models import SECTION_MAX_LENGTH

#: Room for the escaping a browser may add; the action counts the characters exactly.
_TEXT = Annotated[str, Field(max_length=SECTION_MAX_LENGTH + 500)]


class SectionSave(_Message):
    """A participant's text for one section, with the version and text it started from."""

    type: Literal["section.save"]
    section: Id
    version: Annotated[int, Field(ge=1, lt=2**31)]
    base: _TEXT
    text: _TEXT


class Editing(_Message):
    """Someone started or stopped typing in a section."""

    type: Literal["editing"]
    section: Id
    active: bool


DiscussionMessage = Annotated[Resume | Ping | SectionSave | Editing, Field(discriminator="type")]
adapter = TypeAdapter(DiscussionMessage)
