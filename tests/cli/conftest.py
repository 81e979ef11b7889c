"""A live ``shepherd up`` (real processes: control plane, runtimes, children) for CLI tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.fleet import LiveFleet, running_fleet

FLEET = """
agents:
  - name: echo
    command: ["python3", "-c", "import sys; print('echo:', sys.stdin.read())"]
    max_parallel: 2
  - name: sad
    command: ["sh", "-c", "cat >/dev/null; exit 4"]
  - name: sleepy
    command: ["sh", "-c", "cat >/dev/null; sleep 30"]
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFleet]:
    with running_fleet(tmp_path_factory.mktemp("up"), FLEET) as fleet:
        yield fleet
