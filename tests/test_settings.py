"""The settings profiles refuse unsafe configurations and pick the right data stores.

Each check runs Django in a child process with its own environment, so the settings
of this test process (the test profile) are never disturbed.
"""

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

# Variables the settings read; the test process itself has some of them set.
SETTINGS_ENV = (
    "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL", "REDIS_URL", "SESSION_IDLE_MINUTES", "SESSION_ABSOLUTE_HOURS", "LOG_LEVEL",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "CONN_MAX_AGE",
)
PRODUCTION = "workspace.settings.production"
BASE = "workspace.settings.base"


def child_env(settings_module: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env.update(overrides)
    return env


def production_env(**overrides: str) -> dict[str, str]:
    values = {"SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "workspace.example.org"}
    values.update(overrides)
    return child_env(PRODUCTION, **values)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def loaded_settings(env: dict[str, str], *names: str) -> dict:
    """The named settings as the child process sees them after django.setup()."""
    result = run_python(
        f"""
        import json
        import django
        django.setup()
        from django.conf import settings
        print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))
        """,
        env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def refuses_to_start(env: dict[str, str]) -> str:
    """Start Django; assert it refused with ImproperlyConfigured; return the message."""
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0, "settings loaded but should have been refused"
    assert "ImproperlyConfigured" in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


# --- production ---------------------------------------------------------------------

def test_production_settings_pass_the_deployment_checklist():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_harden_cookies_and_transport():
    values = loaded_settings(
        production_env(), "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS",
    )
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["ALLOWED_HOSTS"] == ["workspace.example.org"]


def test_production_static_files_collect_with_the_manifest_storage(tmp_path):
    """collectstatic with production settings (hashed, compressed files) fails if the
    compiled stylesheet refers to a file the build did not produce."""
    assert (ROOT / "workspace/static/build/app.css").exists(), "run `npm run build` first"
    result = run_python(
        f"""
        import django
        from django.conf import settings
        django.setup()
        settings.STATIC_ROOT = {str(tmp_path / "static")!r}
        from django.core.management import call_command
        call_command("collectstatic", interactive=False, verbosity=0)
        """,
        production_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    assert {"build/app.css", "js/init.js", "js/app.mjs"} <= manifest["paths"].keys()


@pytest.mark.parametrize("hosts", ["*", "workspace.example.org,*"])
def test_production_refuses_a_wildcard_host(hosts):
    message = refuses_to_start(production_env(ALLOWED_HOSTS=hosts))
    assert "ALLOWED_HOSTS" in message


def test_production_refuses_empty_allowed_hosts():
    message = refuses_to_start(production_env(ALLOWED_HOSTS=""))
    assert "ALLOWED_HOSTS" in message


def test_production_refuses_unset_allowed_hosts():
    env = production_env()
    del env["ALLOWED_HOSTS"]
    assert "ALLOWED_HOSTS" in refuses_to_start(env)


@pytest.mark.parametrize("debug", ["1", "true", "on"])
def test_production_refuses_debug(debug):
    message = refuses_to_start(production_env(DEBUG=debug))
    assert "DEBUG" in message


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["SECRET_KEY"]
    assert "SECRET_KEY" in refuses_to_start(env)


# --- base profile ---------------------------------------------------------------------

def test_base_settings_refuse_to_start_without_secret_key_when_debug_is_off():
    assert "SECRET_KEY" in refuses_to_start(child_env(BASE))
    assert "SECRET_KEY" in refuses_to_start(child_env(BASE, DEBUG="0", SECRET_KEY=""))


def test_redis_url_configures_the_redis_channel_layer():
    url = "redis://127.0.0.1:6379/3"
    layers = loaded_settings(
        child_env(BASE, SECRET_KEY="k" * 50, REDIS_URL=url), "CHANNEL_LAYERS"
    )["CHANNEL_LAYERS"]
    assert layers["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    host = layers["default"]["CONFIG"]["hosts"][0]
    assert (host["address"], host["max_connections"]) == (url, 1000)
    assert host["retry_on_error"] == ["<class 'redis.exceptions.ConnectionError'>"]
    # The default capacity (100) drops group messages silently under load.
    assert layers["default"]["CONFIG"]["capacity"] > 100


def test_redis_pool_size_comes_from_the_environment():
    layers = loaded_settings(
        child_env(BASE, SECRET_KEY="k" * 50, REDIS_URL="redis://127.0.0.1:6379/3",
                  REDIS_MAX_CONNECTIONS="250"),
        "CHANNEL_LAYERS",
    )["CHANNEL_LAYERS"]
    assert layers["default"]["CONFIG"]["hosts"][0]["max_connections"] == 250


def test_without_redis_url_the_channel_layer_is_in_memory():
    layers = loaded_settings(child_env(BASE, SECRET_KEY="k" * 50), "CHANNEL_LAYERS")
    assert layers["CHANNEL_LAYERS"]["default"]["BACKEND"] == (
        "channels.layers.InMemoryChannelLayer"
    )


def test_without_database_url_the_database_is_a_sqlite_file_in_var():
    database = loaded_settings(child_env(BASE, SECRET_KEY="k" * 50), "DATABASES")["DATABASES"]
    default = database["default"]
    assert default["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(default["NAME"]) == ROOT / "var" / "workspace.sqlite3"


def test_database_url_selects_postgresql_with_health_checks():
    url = "postgres://someone@db.internal:5432/workspace"
    default = loaded_settings(
        child_env(BASE, SECRET_KEY="k" * 50, DATABASE_URL=url), "DATABASES"
    )["DATABASES"]["default"]
    assert default["ENGINE"] == "django.db.backends.postgresql"
    assert (default["HOST"], default["NAME"]) == ("db.internal", "workspace")
    assert default["CONN_HEALTH_CHECKS"] is True


# --- the strict-skip rule of the root conftest.py --------------------------------------

SKIPPING_TESTS = """
    import pytest

    @pytest.mark.skip(reason="chromium is not installed")
    def test_skipped_by_marker():
        pass

    def test_skipped_in_the_body():
        pytest.skip("redis is not answering")

    @pytest.mark.requires_postgres
    def test_needs_postgres():
        pass

    @pytest.mark.xfail(reason="known bug", strict=True)
    def test_expected_failure():
        assert False

    def test_passes():
        pass
"""


@pytest.fixture
def child_pytest(pytester, monkeypatch):
    """A child pytest run in a scratch folder with this repository's root conftest."""
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_skips=SKIPPING_TESTS)
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "WORKSPACE_STRICT_SKIPS"):
        monkeypatch.delenv(name, raising=False)

    def run(*args):
        return pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider",
                                             "-rA", *args)

    return run


def test_without_strict_skips_a_skip_is_a_skip(child_pytest):
    result = child_pytest()
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines(["*needs PostgreSQL: set DATABASE_URL=*"])
    assert result.ret == 0


def test_strict_skips_turn_every_skip_into_a_failure(child_pytest, monkeypatch):
    monkeypatch.setenv("WORKSPACE_STRICT_SKIPS", "1")
    result = child_pytest()
    # A skip in the test body fails the test; a skip decided before the test ran
    # (a skip marker) fails its setup, which pytest counts as an error. A test that needs
    # a service this run lacks is deselected, not failed: it runs in the pass that has it.
    result.assert_outcomes(passed=1, failed=1, errors=1, xfailed=1, deselected=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_skipped_by_marker*",
        "chromium is not installed [[]skipped; a skip fails when WORKSPACE_STRICT_SKIPS=1[]]",
        "*FAILURES*",
        "*test_skipped_in_the_body*",
        "redis is not answering [[]skipped; a skip fails when WORKSPACE_STRICT_SKIPS=1[]]",
        "*1 deselected: they need PostgreSQL or Redis, which this run does not have*",
        "  test_skips.py::test_needs_postgres",
    ])


def test_strict_skips_with_postgres_configured_run_the_postgres_test(child_pytest, monkeypatch):
    monkeypatch.setenv("WORKSPACE_STRICT_SKIPS", "1")
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    result = child_pytest("-k", "needs_postgres or passes")
    result.assert_outcomes(passed=2)


def test_strict_skips_fail_a_module_skipped_at_import(pytester, monkeypatch):
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_module_skip="""
        import pytest
        pytest.skip("no browser here", allow_module_level=True)

        def test_never_collected():
            pass
    """)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.setenv("WORKSPACE_STRICT_SKIPS", "1")
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*no browser here [[]skipped; a skip fails when *"])


def test_requires_postgres_runs_when_postgres_is_configured(child_pytest, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    result = child_pytest("-k", "needs_postgres")
    result.assert_outcomes(passed=1)


def test_production_responses_carry_hsts_and_host_only_secure_same_site_cookies():
    """Over HTTPS, as the load balancer forwards it: HSTS with subdomains and preload,
    and the CSRF cookie `__Host-` prefixed, Secure, HttpOnly, SameSite=Lax."""
    result = run_python(
        """
        import json
        import django
        django.setup()
        from django.conf import settings
        from django.test import Client, override_settings
        # Not collected here: plain static storage, so the page renders (the manifest
        # storage itself is proven by the collectstatic test above).
        plain = {**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        with override_settings(STORAGES=plain):
            response = Client().get("/accounts/login/", secure=True,
                                    HTTP_HOST="workspace.example.org")
        cookie = response.cookies[settings.CSRF_COOKIE_NAME]
        print(json.dumps({
            "status": response.status_code,
            "hsts": response.headers.get("Strict-Transport-Security"),
            "csrf_cookie": settings.CSRF_COOKIE_NAME, "session_cookie": settings.SESSION_COOKIE_NAME,
            "secure": bool(cookie["secure"]), "httponly": bool(cookie["httponly"]),
            "samesite": cookie["samesite"], "session_samesite": settings.SESSION_COOKIE_SAMESITE,
            "no_store": response.headers.get("Cache-Control"),
        }))
        """,
        production_env(),
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200
    assert seen["hsts"] == "max-age=63072000; includeSubDomains; preload"
    assert seen["csrf_cookie"] == "__Host-csrftoken" and seen["session_cookie"] == "__Host-sessionid"
    assert seen["secure"] and seen["httponly"] and seen["samesite"] == "Lax"
    assert seen["session_samesite"] == "Lax"
    assert "no-store" in seen["no_store"]
