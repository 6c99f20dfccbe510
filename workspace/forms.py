"""Form fields shared by the apps' forms."""

import re
import uuid

from django import forms
from django.core.exceptions import ValidationError

#: The shape of a page's key: made when a form's page is shown (a UUID), sent with the
#: form, and kept on what it adds, so the same form sent again adds nothing twice.
PAGE_KEY = r"^[A-Za-z0-9-]{8,64}$"


def new_page_key() -> str:
    return str(uuid.uuid4())


def page_key(request) -> str:
    """The sent form's page key, or "" if it has none of the right shape."""
    key = request.POST.get("client_ref", "")
    return key if re.fullmatch(PAGE_KEY, key) else ""


def as_id(value) -> int:
    """An id from an address or a form as a number a row could have (1 up to what a
    64-bit column holds), or -1, which no row has: a lookup by it finds nothing instead
    of sending the database a number it cannot take (a server error)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1
    return number if 0 < number < 2**63 else -1


class ChoicesById(forms.ModelMultipleChoiceField):
    """Several of a queryset's rows, chosen by id. Anything no row's id could be is
    refused as a wrong choice: Django would send a number too large for any database
    to it (its guard covers single lookups, not `pk__in`), a server error instead of a
    message."""

    def _check_values(self, value):
        for pk in value:
            if as_id(pk) == -1:
                raise ValidationError(self.error_messages["invalid_choice"],
                                      code="invalid_choice", params={"value": pk})
        return super()._check_values(value)


#: The largest version a form takes (versions, and history ids, are 32-bit integers).
MAX_VERSION = 2**31 - 1


def version_field(message: str, *, min_value: int = 1) -> forms.IntegerField:
    """The hidden version a page was showing (a count of saves, or the id of a history
    row). Anything but a version it could have shown (missing, not a number, out of
    range) gets the one `message`: reload the page."""
    return forms.IntegerField(
        widget=forms.HiddenInput, min_value=min_value, max_value=MAX_VERSION,
        error_messages={key: message for key in ("required", "invalid", "min_value", "max_value")})
