"""Base settings, read from the environment (see README.md, "Configuration").

`workspace.settings` is the base profile used by `make run` (with DEBUG=1) and by any
deployment that sets its own environment; `workspace.settings.production` adds the
transport and cookie hardening a council deployment needs; `workspace.settings.test`
is what the test suite uses.
"""

import datetime
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only: a random key kept in var/ so sessions survive restarts.
    VAR_DIR.mkdir(exist_ok=True)
    key_file = VAR_DIR / "dev-secret-key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The load balancers and proxies in front of the service (addresses or networks): only
# behind these is X-Forwarded-For believed when the access log records a client address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "guardian",
    "simple_history",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "audit",
    "teams",
    "casenotes",
    "discussions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Wraps every dynamic response, including errors raised by the middleware below.
    "workspace.middleware.NoStoreMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "workspace.sessions.SessionTimeoutMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "teams.two_factor.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "workspace.urls"
ASGI_APPLICATION = "workspace.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "workspace.context_processors.navigation",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'workspace.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers carry on while one writer commits; IMMEDIATE takes the write
    # lock at BEGIN so two writers queue instead of failing half-way.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = env.str("REDIS_URL", default="")
#: Seconds a Redis read may wait: well over the channel layer's blocking receive (5 s).
REDIS_READ_TIMEOUT = 15
if REDIS_URL:
    import redis.exceptions

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py fails at once when its pool is exhausted (100 by default): a
                # room of hundreds closing together would leave presence behind.
                # A pooled connection Redis dropped (a restart) is retried on a fresh one,
                # so the first sends after Redis returns do not fail.
                # A read waits longer than the layer's blocking receive (BZPOPMIN, 5 s):
                # redis-py 8's default read timeout is those same 5 s, so an idle
                # socket's receive timed out as often as not and the socket closed as
                # if Redis were down (channels_redis#422). A Redis that stops answering
                # is still noticed, within REDIS_READ_TIMEOUT.
                "hosts": [{"address": REDIS_URL,
                           "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=1000),
                           "socket_timeout": REDIS_READ_TIMEOUT,
                           "retry_on_error": [redis.exceptions.ConnectionError]}],
                # The default (100) drops group messages silently under load.
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=1500),
                "expiry": 30,
                # Note entries travel to the audiences allowed to read them; on Redis they
                # are encrypted (Fernet). The first key encrypts; all decrypt (rotation).
                "symmetric_encryption_keys": env.list(
                    "CHANNEL_LAYER_ENCRYPTION_KEYS", default=[SECRET_KEY]
                ),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication ----------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First: refuses any sign-in for an account locked out by repeated failures.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failed attempts on one
# username, that account cannot sign in for LOGIN_LOCKOUT_MINUTES, whatever the password
# (audited; an administrator can unlock it with `manage.py axes_reset_username NAME`).
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
# By account, not by address: a council's staff share a few NAT addresses, so locking an
# address would lock out a whole office; locking the account stops password guessing on
# it from anywhere (hence axes.W006, "no ip_address", is silenced below).
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "workspace.auth_urls.locked_out"
AXES_CLIENT_IP_CALLABLE = "audit.context.request_client_ip"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "casenotes:caseload"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Guardian: anonymous users never hold object permissions.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False
# Guardian's auth backend is deliberately not installed: object questions are answered
# by casenotes.permissions.policy alone, so `user.has_perm(perm, obj)` grants nothing
# behind the policy's back (membership dates, sensitivity rules).
SILENCED_SYSTEM_CHECKS = ["guardian.W001", "axes.W006"]
GUARDIAN_RAISE_403 = False

# Signed out after SESSION_IDLE_MINUTES without activity (warned SESSION_WARNING_MINUTES
# before) and SESSION_ABSOLUTE_HOURS after signing in, whatever the activity
# (workspace/sessions.py); the cookie lasts no longer than the absolute limit.
# Two-factor sign-in (django-otp, TOTP with backup codes): required for team managers,
# IG officers and administrators (enrolment at their next sign-in), open to everyone
# (teams/two_factor.py). TWO_FACTOR_ENFORCED=false switches the requirement off (the test
# settings do, except in the tests that prove it).
TWO_FACTOR_ENFORCED = env.bool("TWO_FACTOR_ENFORCED", default=True)
OTP_TOTP_ISSUER = "Family Safeguarding Workspace"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=30)
SESSION_WARNING_MINUTES = env.int("SESSION_WARNING_MINUTES", default=2)
SESSION_ABSOLUTE_HOURS = env.int("SESSION_ABSOLUTE_HOURS", default=12)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_HOURS * 60 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy: no inline script or style anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# --- Internationalisation ----------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "workspace" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Product rules -----------------------------------------------------------
NOTE_BODY_MAX_LENGTH = 20_000

# Access governance: how long a team that handed a case over keeps read-only access
# (a transfer request may set its own, up to the maximum), and how long break-glass
# emergency access lasts. Both end at check time; no scheduled job is needed.
HANDOVER_DAYS = env.int("HANDOVER_DAYS", default=28)
HANDOVER_DAYS_MAX = 90
BREAK_GLASS_HOURS = env.int("BREAK_GLASS_HOURS", default=4)
# Search: the shortest query, and how many results of each kind one page shows.
SEARCH_MIN_LENGTH = 3
SEARCH_LIMIT = 25

# Live case room: per-connection message rate (a burst, then a steady rate), and how
# often an open connection re-checks its access by itself (pushed re-checks on
# membership, account and sign-out changes are immediate).
LIVE_RATE_BURST = env.int("LIVE_RATE_BURST", default=30)
# Per person: new notes, finalisations and addenda saved from pages in any one minute
# (0: no limit). Live messages have their own limit (LIVE_RATE_*).
NOTE_SAVES_PER_MINUTE = env.int("NOTE_SAVES_PER_MINUTE", default=30)
LIVE_RATE_PER_SECOND = env.float("LIVE_RATE_PER_SECOND", default=3.0)
LIVE_RECHECK_SECONDS = env.int("LIVE_RECHECK_SECONDS", default=30)

# One JSON object per line on standard error, each with the request id (LOG_FORMAT=text
# for plain lines while developing).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "workspace.logs.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"()": "workspace.logs.TextFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["request_id"],
                             "formatter": env.str("LOG_FORMAT", default="json")}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Information governance --------------------------------------------------------
# Alert thresholds for the IG alerts page: more than this many distinct cases opened by
# one person in an hour; this many refused attempts by one person in ten minutes; and
# working hours (local time, weekdays) outside which case access is flagged.
IG_ALERT_CASES_PER_HOUR = env.int("IG_ALERT_CASES_PER_HOUR", default=20)
IG_ALERT_DENIED_BURST = env.int("IG_ALERT_DENIED_BURST", default=5)
IG_WORKING_HOURS = (env.int("IG_WORKING_HOURS_START", default=8),
                    env.int("IG_WORKING_HOURS_END", default=18))
IG_PAGE_SIZE = 50
# Notes on one page of a case record, newest first; older ones are on the next pages.
CASE_NOTES_PER_PAGE = env.int("CASE_NOTES_PER_PAGE", default=50)
IG_EXPORT_LIMIT = 50_000
