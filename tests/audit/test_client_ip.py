"""The access log records the client's address, believing X-Forwarded-For only from the
proxies the council names (TRUSTED_PROXIES)."""

import pytest
from django.test import Client

from audit import context
from audit.models import AuditAction, AuditEvent


@pytest.mark.parametrize("remote, forwarded, trusted, expected", [
    ("203.0.113.9", None, [], "203.0.113.9"),
    ("203.0.113.9", "198.51.100.7", [], "203.0.113.9"),  # nobody trusted: header ignored
    ("10.0.0.2", "198.51.100.7", ["10.0.0.0/8"], "198.51.100.7"),
    ("10.0.0.2", "198.51.100.7, 10.0.0.5", ["10.0.0.0/8"], "198.51.100.7"),  # two proxies
    ("10.0.0.2", "1.2.3.4, 198.51.100.7", ["10.0.0.0/8"], "198.51.100.7"),  # a spoofed first hop
    ("10.0.0.2", "not-an-address", ["10.0.0.0/8"], "10.0.0.2"),
    ("10.0.0.2", "2001:db8::1", ["10.0.0.2"], "2001:db8::1"),
    ("", "198.51.100.7", ["10.0.0.0/8"], None),
])
def test_client_address_behind_trusted_proxies_only(settings, remote, forwarded, trusted,
                                                    expected):
    settings.TRUSTED_PROXIES = trusted
    assert context.client_ip(remote, forwarded) == expected


def test_a_page_read_behind_the_proxy_records_the_forwarded_client(world, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    client.force_login(world.social_worker)
    client.get("/")
    entry = AuditEvent.objects.filter(action=AuditAction.CASELOAD_VIEWED).latest("id")
    assert entry.client_ip == "198.51.100.7"
