"""Session timeouts: idle (no activity for SESSION_IDLE_MINUTES, with a warning before)
and absolute (SESSION_ABSOLUTE_HOURS after signing in, whatever the activity).

One rule, asked by every HTTP request (SessionTimeoutMiddleware) and by every live
socket's access check (casenotes.consumers.session_user), so a timed-out session can
neither load a page nor keep a socket open. Sign-out on timeout goes through Django's
logout, so it is audited and open sockets are told to close like any sign-out.
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

STARTED = "_workspace_started"  # when this session signed in (epoch seconds)
SEEN = "_workspace_seen"  # the last activity
#: Activity is written to the session at most this often.
TOUCH_EVERY = 30

MESSAGES = {
    "idle": "You were signed out because there was no activity for {minutes} minutes. "
            "Sign in again to carry on.",
    "absolute": "You were signed out because you had been signed in for {hours} hours. "
                "Sign in again to carry on.",
}


def expired(session, now: float | None = None) -> str | None:
    """"idle", "absolute", or None while the session is in time."""
    now = time.time() if now is None else now
    started, seen = session.get(STARTED), session.get(SEEN)
    if started is not None and now - started > settings.SESSION_ABSOLUTE_HOURS * 3600:
        return "absolute"
    if seen is not None and now - seen > settings.SESSION_IDLE_MINUTES * 60:
        return "idle"
    return None


def touch(session, now: float | None = None) -> None:
    now = time.time() if now is None else now
    session.setdefault(STARTED, now)
    if now - session.get(SEEN, 0) >= TOUCH_EVERY:
        session[SEEN] = now


class SessionTimeoutMiddleware:
    """After authentication: sign out a session past its time, else note the activity."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            reason = expired(request.session)
            if reason is not None:
                logout(request)
                messages.info(request, MESSAGES[reason].format(
                    minutes=settings.SESSION_IDLE_MINUTES, hours=settings.SESSION_ABSOLUTE_HOURS))
                return redirect(f"{reverse('login')}?next={request.path}")
            touch(request.session)
        return self.get_response(request)


@require_POST
def keep_alive(request):
    """"Stay signed in": the request itself is the activity (see the middleware)."""
    if request.headers.get("Accept", "").startswith("application/json"):
        return HttpResponse(status=204)
    # Without JavaScript: back to the page the form was on (the same page shows the
    # same bytes for a missing and a forbidden case, so it carries no `next`).
    back = request.headers.get("Referer", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return redirect(back)
    return redirect("casenotes:caseload")
