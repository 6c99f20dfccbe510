"""The schema of every message a browser may send to a case room.

Anything else (unknown type, missing or extra field, wrong type, oversized value)
is refused with an error frame before it reaches an action.
"""

import datetime
from typing import Annotated, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from workspace.forms import PAGE_KEY

#: The largest text frame accepted: a 20,000-character note in escaped JSON, and room.
MAX_FRAME_BYTES = 256 * 1024

Id = Annotated[int, Field(gt=0, lt=2**63)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Resume(_Message):
    """Sent first on every connection: the last event number this page has seen."""

    type: Literal["resume"]
    after: Annotated[int, Field(ge=0, lt=2**63)]


class Writing(_Message):
    type: Literal["writing"]
    active: bool


class Ping(_Message):
    type: Literal["ping"]


class DraftSave(_Message):
    """Autosave of a draft note: a new draft (note is null) or the next version of one."""

    type: Literal["draft.save"]
    note: Id | None
    version: Annotated[int, Field(ge=1, lt=2**31)] | None
    note_type: Annotated[str, Field(max_length=40)]
    occurred_at: Annotated[str, Field(max_length=40)]
    body: Annotated[str, Field(max_length=settings.NOTE_BODY_MAX_LENGTH + 1000)]
    sensitivity: Annotated[str, Field(max_length=20)]
    is_significant: bool
    people: Annotated[list[Id], Field(max_length=100)]
    readers: Annotated[list[Id], Field(max_length=100)]
    #: An agency-restricted note limited to this adult's specialist agency (null: the
    #: author's agency). Left out, a draft's current choice is kept.
    restricted_person: Id | None = None
    #: A key for a new draft, so a save sent again after a lost reply is recognised.
    client_ref: Annotated[str, Field(pattern=PAGE_KEY)] | None = None

    def occurred(self) -> datetime.datetime | None:
        """The moment, or None if it is not a real one (the action then asks for a date).

        Years before 1900 are refused as the note form refuses them: a moment near the
        ends of the calendar cannot be converted between time zones, so it could neither
        be compared, stored nor shown."""
        from django.utils import timezone

        try:
            moment = datetime.datetime.fromisoformat(self.occurred_at)
            if moment.tzinfo is None:
                moment = timezone.make_aware(moment)
            moment.astimezone(datetime.UTC)
        except (ValueError, OverflowError):
            return None
        return moment if moment.year >= 1900 else None


ClientMessage = Annotated[Resume | Writing | Ping | DraftSave, Field(discriminator="type")]
_adapter = TypeAdapter(ClientMessage)


class Invalid(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse(text: str, adapter: TypeAdapter = _adapter):
    """One client frame, validated against `adapter`'s messages (a case room's by
    default), or Invalid with a message for the sender."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise Invalid("too_large", "That message is too large.")
    try:
        return adapter.validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
            raise Invalid("unknown_type", "Unknown message type.") from None
        if first["type"] == "json_invalid":
            raise Invalid("malformed", "Messages must be JSON objects.") from None
        # The location starts with the message type's tag; the field is what helps.
        parts = [str(part) for part in first.get("loc", ())]
        where = ".".join(parts[1:] if len(parts) > 1 else parts)
        raise Invalid("invalid", f"Invalid message: {where or 'message'}: {first['msg']}.") from None
