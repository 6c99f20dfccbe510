"""Every write to accounts, agencies, teams and memberships.

The Django admin calls these from `save_model`; the demo seed calls them too.
"""

import datetime
import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import Actor, record
from audit.models import AuditAction
from teams.models import Agency, Membership, Team
from teams.selectors import actor_for
from workspace.live import notify_access_changed


def _require_admin(acting_user) -> None:
    from casenotes.permissions import Action, policy

    if not policy.can(acting_user, Action.MANAGE_ORGANISATION):
        raise PermissionDenied("Only administrators manage agencies, teams and memberships.")


def _saved(instance, acting_user, action: AuditAction, object_type: str):
    instance.full_clean()
    instance._history_user = acting_user
    instance.save()
    record(actor=actor_for(acting_user), action=action, object_type=object_type,
           object_id=instance.pk)
    return instance


@transaction.atomic
def do_create_user(
    *, acting_user, username: str, password: str, first_name: str = "", last_name: str = "",
    email: str = "", is_staff: bool = False, is_superuser: bool = False,
):
    """Create an account. `acting_user` is None only when bootstrapping the first
    administrator (the demo seed, like `createsuperuser`)."""
    if acting_user is not None:
        _require_admin(acting_user)
    User = get_user_model()
    user = User(username=username, first_name=first_name, last_name=last_name, email=email,
                is_staff=is_staff or is_superuser, is_superuser=is_superuser)
    user.set_password(password)
    user.full_clean()
    user._history_user = acting_user
    user.save()
    actor = actor_for(acting_user) if acting_user else Actor(user_id=None, label="system")
    record(actor=actor, action=AuditAction.USER_CREATED, object_type="user", object_id=user.pk)
    return user


@transaction.atomic
def do_save_user(*, acting_user, user, changed_fields: list[str] = ()):
    """Save an account changed in the administration site (including deactivation).
    The audit entry names the fields changed, never their values."""
    _require_admin(acting_user)
    created = user.pk is None
    user.full_clean(exclude=["password"])
    user._history_user = acting_user
    user.save()
    record(actor=actor_for(acting_user),
           action=AuditAction.USER_CREATED if created else AuditAction.USER_SAVED,
           object_type="user", object_id=user.pk,
           reason="changed: " + ", ".join(sorted(changed_fields)) if changed_fields else "")
    if not created:
        if not user.is_active:
            _end_sessions(acting_user, user, "account deactivated")
        notify_access_changed(user.pk)  # deactivated? open rooms close
    return user


def _sessions_of(user) -> list[str]:
    """The keys of the user's unexpired sessions (database sessions, read one by one:
    a council's few thousand live sessions take milliseconds)."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.models import Session

    return [session.session_key
            for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
            if session.get_decoded().get(SESSION_KEY) == str(user.pk)]


def _end_sessions(acting_user, user, reason: str, keep: str | None = None) -> int:
    from django.contrib.sessions.models import Session

    keys = [key for key in _sessions_of(user) if key != keep]
    Session.objects.filter(session_key__in=keys).delete()
    record(actor=actor_for(acting_user), action=AuditAction.SESSIONS_ENDED, object_type="user",
           object_id=user.pk, reason=f"{len(keys)} session(s): {reason}")
    notify_access_changed(user.pk)  # open live connections re-check and close
    return len(keys)


@transaction.atomic
def do_end_sessions(*, acting_user, user, reason: str = "ended by an administrator") -> int:
    """Sign a user out everywhere: every session ends and their open pages' live
    connections close within seconds. Returns how many sessions there were."""
    _require_admin(acting_user)
    return _end_sessions(acting_user, user, reason)


@transaction.atomic
def do_save_agency(*, acting_user, agency: Agency) -> Agency:
    _require_admin(acting_user)
    return _saved(agency, acting_user, AuditAction.AGENCY_SAVED, "agency")


@transaction.atomic
def do_save_team(*, acting_user, team: Team) -> Team:
    """Create or change a team; a new team gets the group that holds its case access."""
    _require_admin(acting_user)
    if team.group_id is None:
        team.group = Group.objects.create(name=f"team {uuid.uuid4().hex[:12]}: {team.name}"[:150])
    return _saved(team, acting_user, AuditAction.TEAM_SAVED, "team")


@transaction.atomic
def do_save_membership(*, acting_user, membership: Membership) -> Membership:
    _require_admin(acting_user)
    membership = _saved(membership, acting_user, AuditAction.MEMBERSHIP_SAVED, "membership")
    notify_access_changed(membership.user_id)
    return membership


@transaction.atomic
def do_end_membership(
    *, acting_user, membership: Membership, end_date: datetime.date | None = None
) -> Membership:
    """End a membership; the policy stops granting through it from `end_date` on."""
    _require_admin(acting_user)
    membership = Membership.objects.select_for_update(no_key=True).get(pk=membership.pk)
    end_date = end_date or timezone.localdate()
    if end_date < membership.start_date:
        raise ValidationError({"end_date": "The end date must be on or after the start date."})
    membership.end_date = end_date
    membership.full_clean()
    membership._history_user = acting_user
    membership.save()
    record(actor=actor_for(acting_user), action=AuditAction.MEMBERSHIP_ENDED,
           object_type="membership", object_id=membership.pk)
    notify_access_changed(membership.user_id)
    return membership


@transaction.atomic
def do_set_password(*, acting_user, user, password: str | None, keep_session: str | None = None):
    """An administrator sets (or, with None, removes) a user's password: every other
    session of theirs ends and their open live connections close. `keep_session` is the
    administrator's own session when they change their own password."""
    _require_admin(acting_user)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user._history_user = acting_user
    user.save(update_fields=["password"])
    record(actor=actor_for(acting_user), action=AuditAction.PASSWORD_CHANGED, object_type="user",
           object_id=user.pk)
    _end_sessions(acting_user, user, "password changed", keep=keep_session)
    return user


def do_change_own_password(*, request, current_password: str, new_password: str):
    """A person changes their own password (`request.user`). The one they have must be
    right, and the new one must pass the password rules (AUTH_PASSWORD_VALIDATORS).
    Every other session of theirs ends and its open pages' live connections close; the
    session of `request` stays signed in.

    The current password is checked as a sign-in is, through `authenticate`, before
    anything is written: a wrong one is a failed sign-in, audited (LOGIN_FAILED) and
    counted towards the account's lock-out (django-axes), so a session left open cannot
    be used to guess the password and take the account over."""
    from django.contrib.auth import authenticate
    from django.contrib.auth.password_validation import validate_password

    user = request.user
    if not user.is_active:
        raise PermissionDenied("This account has been deactivated.")
    if not current_password:
        raise ValidationError({"current_password": "Enter your current password."})
    checked = authenticate(request, username=user.get_username(), password=current_password)
    if checked is None or checked.pk != user.pk:
        raise ValidationError({"current_password": "Your current password is not right. Enter it again."})
    if new_password == current_password:
        raise ValidationError({"new_password": "Enter a new password, not the one you have now."})
    try:
        validate_password(new_password, user)
    except ValidationError as weak:
        raise ValidationError({"new_password": weak.messages}) from weak
    with transaction.atomic():
        user.set_password(new_password)
        user._history_user = user
        user.save(update_fields=["password"])
        record(actor=actor_for(user), action=AuditAction.PASSWORD_CHANGED, object_type="user",
               object_id=user.pk, reason="changed by the user")
        _end_sessions(user, user, "password changed by the user", keep=request.session.session_key)
    return user


# --- two-factor sign-in (teams/two_factor.py) --------------------------------------------

BACKUP_CODES = 10


@transaction.atomic
def do_start_totp(*, user, fresh: bool):
    """The user's unconfirmed authenticator device: a new key when `fresh` (the set-up
    page shown anew), else the one they are confirming."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if pending is not None and not fresh:
        return pending
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@transaction.atomic
def do_confirm_totp(*, request, token: str | None) -> list[str]:
    """Confirm the pending authenticator with a code it shows; make ten backup codes
    (replacing any), mark this session as having passed the second step, and return
    the codes (shown once). A wrong code (None: one that cannot be a code) changes
    nothing."""
    import django_otp
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    user = request.user
    device = do_start_totp(user=user, fresh=False)
    if token == "":
        raise ValidationError("Enter the 6-digit code your authenticator app shows.")
    if token is None or not device.verify_token(token):
        raise ValidationError("That code is not right. Enter the 6-digit code your app shows "
                              "now (codes change every 30 seconds).")
    device.confirmed = True
    device.save()
    StaticDevice.objects.filter(user=user).delete()
    backup = StaticDevice.objects.create(user=user, name="Backup codes")
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    for code in codes:
        backup.token_set.create(token=code)
    django_otp.login(request, device)
    record(actor=actor_for(user), action=AuditAction.TWO_FACTOR_ENROLLED, object_type="user",
           object_id=user.pk)
    return codes


def do_verify_second_factor(*, request, token: str | None) -> None:
    """The second step of signing in: a code from the app or an unused backup code
    (used up by this). Audited either way; django-otp slows repeated failures."""
    import django_otp

    from audit.models import Outcome

    user = request.user
    waits = [data["locked_until"] for allowed, data in
             (d.verify_is_allowed() for d in django_otp.devices_for_user(user)) if not allowed]
    if waits:
        seconds = max(1, int((min(waits) - timezone.now()).total_seconds()) + 1)
        raise ValidationError(f"Too many wrong codes. Wait {seconds} seconds, then try again.")
    device = django_otp.match_token(user, token) if token else None
    if device is None:
        record(actor=actor_for(user), action=AuditAction.TWO_FACTOR_FAILED, outcome=Outcome.DENIED,
               object_type="user", object_id=user.pk)
        raise ValidationError("That code is not right. Enter the code your authenticator app "
                              "shows now, or one of your backup codes.")
    django_otp.login(request, device)
    record(actor=actor_for(user), action=AuditAction.TWO_FACTOR_VERIFIED, object_type="user",
           object_id=user.pk, reason="backup code" if device.name == "Backup codes" else "app")


@transaction.atomic
def do_reset_two_factor(*, acting_user, user) -> None:
    """A lost phone: remove the user's devices and codes (they set up again at their
    next sign-in) and end their sessions."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    _require_admin(acting_user)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    record(actor=actor_for(acting_user), action=AuditAction.TWO_FACTOR_RESET, object_type="user",
           object_id=user.pk)
    _end_sessions(acting_user, user, "two-factor sign-in reset")
