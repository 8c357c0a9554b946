"""One running product per test session: `earshot run` with the bot on a fake Bot API."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from testkit.stack import Stack, running_stack

_user_ids = itertools.count(100_001)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s


@pytest.fixture
def user_id() -> int:
    """A fresh Telegram user per test, so conversations never leak between tests."""
    return next(_user_ids)
