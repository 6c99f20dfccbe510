"""The demo world (manage.py seed_demo) as a fixture for page tests: realistic data
written through the actions, with one member of each role."""

import io
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

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


@pytest.fixture
def demo(db, settings) -> Demo:
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    settings.DEBUG = False
    return Demo()
