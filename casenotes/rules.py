"""Product rules shared by the note form (to show every error at once) and the
actions (which enforce them whatever the caller)."""

import datetime

# The moment a note is about may be a little ahead of the server's clock on the
# author's device; anything beyond this is refused as "in the future".
CLOCK_SKEW = datetime.timedelta(minutes=2)
FUTURE_MESSAGE = "The date and time this happened must be in the past."
CLOSED_MESSAGE = "This case is closed. Notes cannot be added to or changed on a closed case."
