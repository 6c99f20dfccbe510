from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.urls import path

from teams import two_factor
from teams.views import password_change
from workspace.sessions import keep_alive


class SignInForm(AuthenticationForm):
    """Django's sign-in form with messages in the GOV.UK style."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Enter a correct username and password. Both are case-sensitive.",
        "inactive": "This account has been deactivated. Speak to your administrator.",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].error_messages["required"] = "Enter your username."
        self.fields["password"].error_messages["required"] = "Enter your password."


def locked_out(request, response=None, credentials=None):
    """The sign-in page, saying why: too many failed attempts on this account (django-axes
    calls this instead of signing in, whatever the password)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    form = SignInForm(request, data=request.POST or None)
    form.errors.clear()
    form.add_error(None, f"This account is locked after {settings.AXES_FAILURE_LIMIT} failed "
                         f"sign-in attempts. Try again in {minutes} minutes, or ask your "
                         "administrator to unlock it.")
    return render(request, "registration/login.html", {"form": form}, status=429)


urlpatterns = [
    path("login/", auth_views.LoginView.as_view(
        authentication_form=SignInForm, redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("keep-alive/", keep_alive, name="keep_alive"),
    path("password/", password_change, name="password_change"),
    path("two-factor/", two_factor.verify, name="two_factor_verify"),
    path("two-factor/setup/", two_factor.setup, name="two_factor_setup"),
]
