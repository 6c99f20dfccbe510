"""Sign-in, sign-out and failed sign-in go to the audit trail.

Django reports these only through its auth signals, so the receivers here are thin:
they hand straight to `audit.actions.record`.
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.actions import record
from audit.models import AuditAction, Outcome


def _actor(user):
    from teams.selectors import actor_for

    return actor_for(user)


@receiver(user_logged_in, dispatch_uid="audit_login")
def on_login(sender, request, user, **kwargs):
    record(actor=_actor(user), action=AuditAction.LOGIN, object_type="user", object_id=user.pk)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        record(actor=_actor(user), action=AuditAction.LOGOUT, object_type="user", object_id=user.pk)
        # Signed out: the user's open case rooms re-check (their session is gone) and close.
        from workspace.live import notify_access_changed

        notify_access_changed(user.pk)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    from audit.actions import Actor

    username = str(credentials.get("username", ""))
    record(
        actor=Actor(user_id=None, label=username),
        action=AuditAction.LOGIN_FAILED,
        outcome=Outcome.DENIED,
        object_type="user",
    )



def _on_locked_out(sender, request, username, ip_address, **kwargs):
    """django-axes locked an account after repeated failed sign-ins."""
    from django.conf import settings

    from audit.actions import Actor

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    record(actor=Actor(user_id=None, label=str(username or "")), action=AuditAction.LOGIN_LOCKED_OUT,
           outcome=Outcome.DENIED, object_type="user",
           reason=f"locked for {minutes} minutes after {settings.AXES_FAILURE_LIMIT} failed sign-ins")


def connect_lockout() -> None:
    """Connected when the app is ready (axes' signals module needs the app registry)."""
    from axes.signals import user_locked_out

    user_locked_out.connect(_on_locked_out, dispatch_uid="audit_locked_out")
