"""Headers and markup every page must keep: CSP with no inline script or style,
no caching of case data, framing refused, a request id for support."""

import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_no_template_has_inline_script_or_style():
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<script\b[^>]*>", text):
            if "src=" not in match.group(0):
                offenders.append(f"{path.name}: inline <script>")
        if re.search(r"<style\b", text) or re.search(r"\sstyle=", text):
            offenders.append(f"{path.name}: inline style")
        if re.search(r"\son[a-z]+=", text):
            offenders.append(f"{path.name}: inline event handler")
    assert offenders == []


def test_case_pages_send_csp_and_security_headers(demo):
    client = demo.client("social.worker")
    response = client.get(reverse("casenotes:case_detail", args=[demo.case().pk]))
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "no-store"
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_rendered_pages_have_no_inline_script(demo, client):
    signed_in = demo.client("social.worker")
    case = demo.case()
    pages = [(signed_in, url) for url in [
        "/", reverse("casenotes:case_detail", args=[case.pk]),
        reverse("casenotes:note_create", args=[case.pk])]] + [(client, reverse("login"))]
    for who, url in pages:
        html = who.get(url).content.decode()
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts and all("src=" in tag for tag in scripts), url


def test_static_assets_are_served(client, db):
    for path in ["build/app.css", "build/govuk-frontend.min.js", "js/init.js", "js/app.mjs",
                 "js/case_room.mjs", "js/note_autosave.mjs"]:
        response = client.get(settings.STATIC_URL + path)
        assert response.status_code == 200, path


def test_an_incoming_request_id_is_kept_when_well_formed(client, db):
    response = client.get(reverse("login"), HTTP_X_REQUEST_ID="lb-1234567890abcdef")
    forged = client.get(reverse("login"), HTTP_X_REQUEST_ID="bad\r\nid")
    assert response["X-Request-ID"] == "lb-1234567890abcdef"
    assert re.fullmatch(r"[0-9a-f]{32}", forged["X-Request-ID"])
