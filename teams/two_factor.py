"""Two-factor sign-in (django-otp): an authenticator app (TOTP) and ten single-use backup
codes.

- Who must use it: team managers, IG officers and administrators (and any staff or
  superuser account). They set it up at their next sign-in; nobody else is stopped, and
  anyone may set it up (then it is asked for them too).
- After the password, a user with a device is asked for a code before any page; a live
  socket is refused until the session has passed it (`verified_session`).
- Writes (devices, codes) go through teams.actions; this module holds the rule, the
  middleware and the pages.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user
from django_otp.models import Device

from teams.models import Role

REQUIRED_ROLES = frozenset({Role.TEAM_MANAGER, Role.IG_OFFICER, Role.ADMINISTRATOR})
#: Pages a signed-in user may reach before the second step.
_OPEN = ("login", "logout", "keep_alive", "healthz", "two_factor_verify", "two_factor_setup")


def required(user) -> bool:
    from teams.selectors import active_memberships

    if user.is_superuser or user.is_staff:
        return True
    return any(m.role in REQUIRED_ROLES for m in active_memberships(user))


def has_device(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def needed(user) -> bool:
    """Must this user pass the second step before using the service?"""
    return settings.TWO_FACTOR_ENFORCED and (has_device(user) or required(user))


def verified_session(store, user) -> bool:
    """Has this session (a SessionStore) passed the second step with one of the user's
    own confirmed devices? Asked by the live sockets."""
    device_id = store.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(device_id) if device_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


def _next(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


class TwoFactorMiddleware:
    """After django-otp's: send a signed-in user who has not passed the second step to
    it (or to set it up, if they must and have not), before any other page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (settings.TWO_FACTOR_ENFORCED and user is not None and user.is_authenticated
                and not user.is_verified() and not self._open(request)):
            if has_device(user):
                return redirect(f"{reverse('two_factor_verify')}?next={request.get_full_path()}")
            if required(user):
                return redirect(f"{reverse('two_factor_setup')}?next={request.get_full_path()}")
        return self.get_response(request)

    @staticmethod
    def _open(request) -> bool:
        match = getattr(request, "resolver_match", None)
        if match is None:
            from django.urls import Resolver404, resolve

            try:
                match = resolve(request.path_info)
            except Resolver404:
                return False
        return match.url_name in _OPEN or request.path_info.startswith(settings.STATIC_URL or "/static/")


def _code(request) -> str | None:
    """The code as typed, less spaces; None (a wrong code, refused and audited as one)
    for anything no code can be: app codes are digits and backup codes letters and
    digits, so nothing else (a NUL, which PostgreSQL cannot even compare, a page of
    text) reaches the devices."""
    code = "".join((request.POST.get("code") or "").split())
    if not code or (len(code) <= 64 and code.isascii() and code.isalnum()):
        return code
    return None


@login_required
@require_http_methods(["GET", "POST"])
def verify(request):
    """The second step: a code from the app, or a backup code."""
    from teams.actions import do_verify_second_factor

    if request.user.is_verified():
        return redirect(_next(request))
    if not has_device(request.user):
        return redirect(f"{reverse('two_factor_setup')}?next={_next(request)}")
    error = None
    if request.method == "POST":
        try:
            do_verify_second_factor(request=request, token=_code(request))
        except ValidationError as refused:
            error = refused.messages[0]
        else:
            return redirect(_next(request))
    return render(request, "registration/two_factor_verify.html",
                  {"error": error, "next": _next(request)}, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def setup(request):
    """Set up an authenticator app: scan the code (or type the key), enter a code it
    shows, then keep the backup codes shown once."""
    from teams.actions import do_confirm_totp, do_start_totp

    if request.user.is_verified() or (has_device(request.user) and settings.TWO_FACTOR_ENFORCED):
        messages.info(request, "Two-factor sign-in is already set up for your account.")
        return redirect(_next(request))
    error = None
    if request.method == "POST":
        try:
            codes = do_confirm_totp(request=request, token=_code(request))
        except ValidationError as refused:
            error = refused.messages[0]
        else:
            return render(request, "registration/two_factor_backup_codes.html",
                          {"codes": codes, "next": _next(request)})
    device = do_start_totp(user=request.user, fresh=request.method == "GET")
    return render(request, "registration/two_factor_setup.html", {
        "qr_svg": _qr_svg(device.config_url), "key": _spaced_key(device),
        "error": error, "next": _next(request), "required": required(request.user),
    }, status=400 if error else 200)


def _qr_svg(data: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage)
    svg = image.to_string(encoding="unicode")
    return svg[svg.index("<svg"):]  # inline: no XML declaration


def _spaced_key(device) -> str:
    from base64 import b32encode

    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i:i + 4] for i in range(0, len(key), 4))
