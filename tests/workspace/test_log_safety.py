"""No password, session key or note text reaches the logs or the audit trail, and CR/LF in
a logged value cannot start a log line of its own, in the JSON format used in production
or in the plain text format used while developing (LOG_FORMAT=text)."""

import datetime
import io
import json
import logging
import logging.config

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from tests.factories import PASSWORD
from workspace.logs import RequestIdFilter

#: Every logger whose records are captured at DEBUG: the root (and so every logger with no
#: level of its own: the apps' and django-axes'), the apps by name, and Django's request
#: and security loggers (which otherwise take the level of the "django" logger).
CAPTURED_LOGGERS = ("", "audit", "teams", "casenotes", "discussions", "workspace", "axes",
                    "django.request", "django.security")

WRONG_PASSWORD = "Kestrel-wrong-passphrase-8812"
NOTE_TEXT = "Jade said her stepfather locks the food cupboard (NOTETEXT-4471)."

# What a forged record would look like on a line of its own, in either format.
FORGED_JSON = '{"level": "INFO", "logger": "audit", "message": "FORGED-LINE"}'
FORGED_TEXT = "1999-12-31 23:59:59,999 INFO audit [] FORGED-LINE"
FORGED = f"\r\n{FORGED_JSON}\r\n{FORGED_TEXT}"


def configured_formatter(name: str) -> logging.Formatter:
    """The formatter `name` of settings.LOGGING, built the way logging.config builds it."""
    config = dict(django_settings.LOGGING["formatters"][name])
    return logging.config.DictConfigurator({}).configure_formatter(config)


@pytest.fixture
def log_output():
    """Every record logged at DEBUG or above, formatted by both configured formatters:
    `log_output["json"]` and `log_output["text"]` hold what the console would show."""
    streams = {name: io.StringIO() for name in ("json", "text")}
    handlers = []
    for name, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(configured_formatter(name))
        handler.addFilter(RequestIdFilter())
        handlers.append(handler)
    loggers = [logging.getLogger(name) for name in CAPTURED_LOGGERS]
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield streams
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _note_post() -> dict:
    moment = timezone.localtime() - datetime.timedelta(hours=1)
    return {"note_type": "home_visit", "occurred_day": str(moment.day),
            "occurred_month": str(moment.month), "occurred_year": str(moment.year),
            "occurred_time": moment.strftime("%H:%M"), "body": NOTE_TEXT,
            "sensitivity": "standard", "intent": "finalise"}


def _session_key(client: Client) -> str:
    cookie = client.cookies.get(django_settings.SESSION_COOKIE_NAME)
    return cookie.value if cookie is not None else ""


def _audit_values() -> list[str]:
    """Every concrete field of every audit entry, as text."""
    fields = AuditEvent._meta.concrete_fields
    return [str(getattr(event, field.attname)) for event in AuditEvent.objects.all()
            for field in fields]


# --- no secrets in the logs or the trail ----------------------------------------------

def test_no_session_key_password_or_note_text_reaches_the_logs_or_the_audit_trail(
        world, settings, log_output):
    settings.AXES_ENABLED = True  # as in production: django-axes logs sign-ins
    user, case = world.social_worker, world.case
    first = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    client = Client()
    session_keys = set()

    signed_in = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert signed_in.status_code == 302
    session_keys.add(_session_key(client))
    assert client.get(reverse("casenotes:case_detail", args=[case.pk])).status_code == 200
    session_keys.add(_session_key(client))
    saved = client.post(reverse("casenotes:note_create", args=[case.pk]), _note_post())
    assert saved.status_code == 302
    session_keys.add(_session_key(client))
    assert client.get(reverse("casenotes:case_detail", args=[999_999])).status_code == 404
    refused = Client().post(reverse("login"), {"username": user.username,
                                               "password": WRONG_PASSWORD})
    assert refused.status_code == 200 and "Enter a correct username and password" in \
        refused.content.decode()
    assert client.post(reverse("logout")).status_code == 302

    session_keys.discard("")
    assert session_keys, "the sign-in set no session cookie"
    secrets = {PASSWORD, WRONG_PASSWORD, NOTE_TEXT, "NOTETEXT-4471", *session_keys}

    json_lines = [json.loads(line) for line in log_output["json"].getvalue().splitlines()]
    # The steps above were logged (a failed sign-in, a page not found), so the check below
    # looks at real lines.
    assert any(line["logger"].startswith("axes") and "login failure" in line["message"]
               for line in json_lines)
    assert any(line["logger"] == "django.request" and "Not Found" in line["message"]
               for line in json_lines)
    for name, stream in log_output.items():
        output = stream.getvalue()
        for secret in secrets:
            assert secret not in output, f"{secret!r} in the {name} log"

    new_actions = set(AuditEvent.objects.filter(id__gt=first).values_list("action", flat=True))
    assert {AuditAction.LOGIN, AuditAction.CASE_VIEWED, AuditAction.NOTE_CREATED,
            AuditAction.LOGIN_FAILED, AuditAction.LOGOUT} <= new_actions
    values = _audit_values()
    for secret in secrets:
        assert not [v for v in values if secret in v], f"{secret!r} in the audit trail"


# --- CR/LF cannot forge a log line ----------------------------------------------------

def _log_a_value_with_cr_lf(log_output) -> str:
    """A warning as the live notices log it, with CR/LF and a forged record in a message
    argument and in an extra field."""
    value = f"case.7{FORGED}"
    logging.getLogger("workspace.live").warning(
        "live notice %s to %s not sent: %r", "note.created", value, None,
        extra={"group": value})
    return value


def test_cr_lf_in_a_logged_value_stays_escaped_inside_one_json_line(log_output):
    value = _log_a_value_with_cr_lf(log_output)
    output = log_output["json"].getvalue()
    assert output.count("\n") == 1 and output.endswith("\n") and "\r" not in output
    assert "FORGED-LINE" in output and "\\r\\n" in output
    line = json.loads(output)
    assert line["logger"] == "workspace.live" and line["level"] == "WARNING"
    assert line["message"] == f"live notice note.created to {value} not sent: None"
    assert line["group"] == value


def test_cr_lf_in_a_logged_value_stays_escaped_on_one_text_line(log_output):
    value = _log_a_value_with_cr_lf(log_output)
    output = log_output["text"].getvalue()
    assert output.count("\n") == 1 and output.endswith("\n") and "\r" not in output
    escaped = value.replace("\r", "\\r").replace("\n", "\\n")
    assert output.rstrip("\n").endswith(
        f"WARNING workspace.live [] live notice note.created to {escaped} not sent: None")


def test_cr_lf_in_an_exception_message_cannot_start_a_line_of_its_own(log_output):
    logger = logging.getLogger("casenotes.views.notes")
    try:
        raise ValueError(f"unexpected value{FORGED}")
    except ValueError:
        logger.exception("saving a note failed")

    json_output = log_output["json"].getvalue()
    assert json_output.count("\n") == 1 and "\r" not in json_output
    line = json.loads(json_output)
    assert line["message"] == "saving a note failed"
    assert f"ValueError: unexpected value{FORGED}" in line["exc_info"]

    # The plain text format shows the traceback under its record, every line indented.
    first, *rest = log_output["text"].getvalue().rstrip("\n").split("\n")
    assert "\r" not in log_output["text"].getvalue()
    assert first.endswith("ERROR casenotes.views.notes [] saving a note failed")
    assert rest and all(following.startswith("    ") for following in rest)
    assert any("FORGED-LINE" in following for following in rest)


def _fail_sign_in_as(username: str) -> None:
    response = Client().post(reverse("login"), {"username": username, "password": "whatever"})
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).exists()


def test_a_failed_sign_in_is_logged_without_the_username_tried(db, settings, log_output):
    """What was typed as a username is sometimes a password: django-axes logs the failure
    with the username masked (its default AXES_SENSITIVE_PARAMETERS, kept here)."""
    settings.AXES_ENABLED = True
    _fail_sign_in_as(f"mallory{FORGED}")
    lines = [json.loads(line) for line in log_output["json"].getvalue().splitlines()]
    assert any(line["logger"].startswith("axes") and "login failure" in line["message"]
               for line in lines)
    for name, stream in log_output.items():
        output = stream.getvalue()
        assert "mallory" not in output and "FORGED-LINE" not in output, name


def test_cr_lf_in_a_username_logged_at_a_failed_sign_in_stays_on_its_own_line(
        db, settings, log_output):
    """Should usernames be logged (AXES_SENSITIVE_PARAMETERS without "username"), CR/LF in
    one still cannot start a line, in either format."""
    settings.AXES_ENABLED = True
    settings.AXES_SENSITIVE_PARAMETERS = ["ip_address"]
    _fail_sign_in_as(f"mallory{FORGED}")

    json_forged = [line for line in log_output["json"].getvalue().splitlines()
                   if "FORGED-LINE" in line]
    assert json_forged, "the username tried was not logged"
    for raw in json_forged:
        assert "mallory\r\n" in json.loads(raw)["message"]

    text_forged = [line for line in log_output["text"].getvalue().splitlines()
                   if "FORGED-LINE" in line]
    assert len(text_forged) == len(json_forged)
    for line in text_forged:
        assert "mallory\\r\\n" in line and not line.startswith(("{", "1999-12-31"))


def test_the_servers_access_log_writes_paths_without_their_query_strings(transactional_db,
                                                                          tmp_path):
    """What people look for travels in query strings (a family's name, words in notes);
    the server's access log (`workspace.serve`, as the Procfile and `make run` start it)
    writes each path without it."""
    import urllib.request

    from tests.servers import ROOT, daphne_server

    log_path = tmp_path / "daphne.log"
    with daphne_server(log_path=log_path) as url:
        for path in ("/search/?q=Kestrel-Harper-5521", "/cases/1/?words=NOTETEXT-4471&page=2"):
            try:
                urllib.request.urlopen(url + path, timeout=10)  # noqa: S310 (loopback)
            except urllib.error.HTTPError:
                pass
    log = log_path.read_text()
    assert '"GET /search/"' in log and '"GET /cases/1/"' in log, log[-2000:]
    assert "Kestrel-Harper" not in log and "NOTETEXT" not in log and "?" not in log.split(
        '"GET ', 1)[1].split('"', 1)[0]
    assert "workspace.serve" in (ROOT / "Procfile").read_text()
