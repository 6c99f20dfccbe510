"""Product rules shared by the note form (to show every error at once) and the
actions (which enforce them whatever the caller)."""

import datetime

from django.utils import timezone
from django.utils.dateformat import format as date_format

# The moment a note is about may be a little ahead of the server's clock on the
# author's device; anything beyond this is refused as "in the future".
CLOCK_SKEW = datetime.timedelta(minutes=2)
FUTURE_MESSAGE = "The date and time this happened must be in the past."
CLOSED_MESSAGE = "This case is closed. Notes cannot be added to or changed on a closed case."


def two_years_on(day: datetime.date) -> datetime.date:
    """The same day two years on (28 February for 29 February): the furthest ahead a
    date a person sets may be (a plan's review, a keyworker's end); later is almost
    always a typing slip."""
    try:
        return day.replace(year=day.year + 2)
    except ValueError:
        return day.replace(year=day.year + 2, day=28)


def moment_text(moment: datetime.datetime) -> str:
    """A moment as people say it. Access "until 31 Dec" ends as 1 Jan begins (local
    midnight, see the actions' `_end_of_day`): such a moment is "the end of 31 Dec
    2026"; any other is its day and time."""
    local = timezone.localtime(moment)
    if local.time() == datetime.time.min:
        return f"the end of {date_format(local - datetime.timedelta(days=1), 'j M Y')}"
    return date_format(local, "j M Y, H:i")
