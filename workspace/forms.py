"""Form fields shared by the apps' forms."""

from django import forms
from django.core.exceptions import ValidationError

#: The largest id a database column can hold (a 64-bit signed integer).
MAX_ID = 2**63 - 1


class ChoicesById(forms.ModelMultipleChoiceField):
    """Several of a queryset's rows, chosen by id. An id too large for any database is
    refused as a wrong choice: Django would send it to the database, where SQLite
    cannot bind it and PostgreSQL refuses it, a server error instead of a message."""

    def _check_values(self, value):
        for pk in value:
            try:
                number = int(str(pk).strip())
            except ValueError:
                continue  # not a number at all: Django refuses it (invalid_pk_value)
            if abs(number) > MAX_ID:
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
