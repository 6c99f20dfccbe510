"""Settings for the test suite: the base profile with a throwaway key and fast hashing.

DATABASE_URL and REDIS_URL are honoured, so the same suite runs on SQLite with the
in-memory channel layer and on PostgreSQL with Redis.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-not-secret-" + "x" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from workspace.settings.base import *  # noqa: E402,F403
from workspace.settings.base import DATABASES, VAR_DIR  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# django-axes needs the request on every authenticate(); the test client's login() has
# none. Throttling is switched on by the tests that prove it (tests/workspace/test_sign_in.py).
AXES_ENABLED = False
# Two-factor sign-in is required in production; the suite's many signed-in clients
# would each need a device, so the tests that prove it switch it on
# (tests/teams/test_two_factor.py).
TWO_FACTOR_ENFORCED = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: the browser tests' live server and database_sync_to_async
    # threads must see the same data. One per process, so concurrent runs never collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A test run needs no durability: commits do not wait for the WAL to reach the disk.
    # (Each transactional test commits its world through the actions, hundreds of times.)
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"
