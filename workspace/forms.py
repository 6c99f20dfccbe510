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
