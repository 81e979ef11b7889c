"""Fault tests: a real ``shepherd up`` (or real runtimes and stores), a real fault injected
(SIGKILL, FLUSHALL, a daemon that escapes, a receiver that hangs), and assertions that nothing was
lost, nothing ran or was finalized twice, no slot leaked, no process was left behind. Every test
here is marked ``faults`` and bounded in time."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)
