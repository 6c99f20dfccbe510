"""Steps shared by the browser tests."""

import re

from casenotes.management.commands.seed_demo import DEMO_PASSWORD


def sign_in(tab, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in as `username` (the demo seed's password unless another is given) and wait
    for the caseload, where signing in lands."""
    page = tab.page
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^https?://[^/]+/$"))
