"""Page-test fixtures."""

from tests.demo import demo  # noqa: F401
