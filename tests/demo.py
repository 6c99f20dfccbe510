"""The demo world (manage.py seed_demo) as a fixture for page tests: realistic data
written through the actions, with one member of each role."""

import io
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings

from casenotes.management.commands.seed_demo import DEMO_PASSWORD
from casenotes.models import Case, CaseNote


@dataclass
class Demo:
    def user(self, username):
        return get_user_model().objects.get(username=username)

    def case(self, reference="FS-24-0117"):
        return Case.objects.get(reference=reference)

    def note(self, body_fragment):
        return CaseNote.objects.get(body__contains=body_fragment)

    def client(self, username) -> Client:
        client = Client()
        assert client.login(username=username, password=DEMO_PASSWORD)
        return client


def seed_demo() -> Demo:
    """manage.py seed_demo (which asks for DEBUG: it refuses to seed a live system)."""
    with override_settings(DEBUG=True):
        call_command("seed_demo", stdout=io.StringIO())
    return Demo()


@pytest.fixture
def demo(_module_demo_shared, db):
    """The demo, seeded once for the module's tests that roll back (tests/conftest.py,
    `Shared`), or for this test alone if it commits for real."""
    shared = _module_demo_shared.get("demo")
    yield from _module_demo_shared.using("demo", seed_demo() if shared is None else shared)
