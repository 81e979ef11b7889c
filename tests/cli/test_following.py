"""Following work from the terminal: ``run --wait`` shows the output, ``--follow`` and ``logs
--follow`` stream it while the child prints, ``executions ls`` shows full ids, the error class
and local times, and every command takes a unique id prefix."""

from __future__ import annotations

import json
import re

import pytest

from shepherd.cli.waiting import SKIPPED, new_text

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
SHORT_LOCAL = re.compile(r"\b\d\d:\d\d(:\d\d)?\b")
LOCAL = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def test_run_wait_shows_the_output_after_the_run(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("run", "echo", "hello there", "--wait")
    assert code == 0
    assert "output (tail):" in out and "echo: hello there" in out


def test_run_follow_streams_the_output_and_exits_with_the_outcome(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("run", "ticker", "go", "--follow")
    assert code == 0
    assert out.splitlines() == ["tick 1", "tick 2", "tick 3", "tick 4"]
    assert "success" in err and "exit 0" in err


def test_logs_follow_prints_a_running_executions_output_to_its_end(cli) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = cli("run", "ticker", "go", "--json")
    eid = json.loads(out)["id"]
    code, out, _ = cli("logs", eid[:-3], "--follow")
    assert code == 0 and out.splitlines() == ["tick 1", "tick 2", "tick 3", "tick 4"]
    code, out, _ = cli("logs", eid)
    assert code == 0 and "tick 4" in out


def test_executions_ls_shows_full_ids_error_classes_and_local_times(cli) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = cli("run", "sad", "x", "--wait", "--json")
    eid = json.loads(out)["id"]
    code, out, _ = cli("executions", "ls", "--agent", "sad")
    assert code == 0
    assert eid in out  # whole, copyable
    assert "error" in out and "exit 4" in out  # the error class: its exit code failed it
    assert SHORT_LOCAL.search(out) and not ISO_UTC.search(out)


def test_show_takes_a_prefix_and_shows_local_times_in_the_timeline(cli) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = cli("run", "echo", "one", "--wait", "--json")
    eid = json.loads(out)["id"]
    code, out, _ = cli("executions", "show", eid[:-2])
    assert code == 0 and eid in out and "timeline" in out
    assert LOCAL.search(out) and not ISO_UTC.search(out)


@pytest.mark.parametrize(
    ("shown", "tail", "fresh"),
    [
        ("", "abc", "abc"),
        ("abc", "abcdef", "def"),
        ("abcdef", "defgh", "gh"),  # the window slid: resume after the overlap
        ("abc", "abc", ""),
        ("abc", "xyz", SKIPPED + "xyz"),  # more was printed than the tail holds
    ],
)
def test_only_new_output_is_printed(shown: str, tail: str, fresh: str) -> None:
    assert new_text(shown, tail) == fresh
