"""A live ``shepherd up`` (real processes: control plane, runtimes, children) for CLI tests, and
``cli``: in-process calls of ``shepherd.app.main`` against it with the data dir's admin token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shepherd.app import main
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
  - name: ticker
    command: ["sh", "-c", "cat >/dev/null; for i in 1 2 3 4; do echo tick $i; sleep 0.4; done"]
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFleet]:
    with running_fleet(tmp_path_factory.mktemp("up"), FLEET) as fleet:
        yield fleet


@pytest.fixture
def cli(live: LiveFleet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHEPHERD_DATA_DIR", str(live.data_dir))
    monkeypatch.setenv("SHEPHERD_URL", live.url)
    monkeypatch.delenv("SHEPHERD_TOKEN", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
