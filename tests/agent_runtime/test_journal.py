"""The runtime's record journal: what is saved is read back, last line wins, forgotten records
stay forgotten, a torn line never costs a record, the file stays bounded, older layouts move in."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from shepherd.agent_client.protocol import Leftover, RunState
from shepherd.agent_runtime import journal as journal_module
from shepherd.agent_runtime.journal import JOURNAL_FILE, RecordJournal, read_records
from shepherd.agent_runtime.record import RunRecord


def _record(eid: str, state: RunState = RunState.RUNNING, **fields: object) -> RunRecord:
    return RunRecord(eid, 1, 60, "boot", state, **fields)  # type: ignore[arg-type]


def _by_id(root: Path) -> dict[str, RunRecord]:
    return {r.execution_id: r for r in read_records(root)}


def test_the_last_record_of_each_execution_is_read_back_and_forgotten_ones_are_not(
    tmp_path: Path,
) -> None:
    journal = RecordJournal(tmp_path)
    assert journal.open() == []
    journal.save(_record("a", pid=10))
    journal.save(_record("b", pid=11))
    done = _record("a", RunState.FINISHED, pid=10, exit_code=3, finished_at_ms=9,
                   leftovers=[Leftover(pid=12, name="sleep")])
    done.tail = bytearray(b"last words \xe2\x9c\x93")
    journal.save(done)
    journal.forget(["b", "never-here"])
    found = _by_id(tmp_path)
    assert list(found) == ["a"]
    assert (found["a"].state, found["a"].exit_code, found["a"].leftovers, bytes(found["a"].tail)) \
        == (RunState.FINISHED, 3, [Leftover(pid=12, name="sleep")], "last words ✓".encode())
    assert stat.S_IMODE((tmp_path / JOURNAL_FILE).stat().st_mode) == 0o600
    journal.close()
    assert list(_by_id(tmp_path)) == ["a"]  # what a reopened runtime finds
    assert [r.execution_id for r in RecordJournal(tmp_path).open()] == ["a"]


def test_a_line_torn_by_a_crash_is_skipped_and_nothing_is_appended_after_it(
    tmp_path: Path,
) -> None:
    journal = RecordJournal(tmp_path)
    journal.open()
    journal.save(_record("a"))
    journal.close()
    with (tmp_path / JOURNAL_FILE).open("a", encoding="utf-8") as file:
        file.write('{"execution_id": "b", "attempt"')  # the write a SIGKILL cut short
    again = RecordJournal(tmp_path)
    assert [r.execution_id for r in again.open()] == ["a"]
    again.save(_record("c"))
    assert sorted(_by_id(tmp_path)) == ["a", "c"]
    lines = (tmp_path / JOURNAL_FILE).read_text().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_the_file_is_rewritten_with_the_live_records_once_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "COMPACT_MIN_LINES", 20)
    journal = RecordJournal(tmp_path)
    journal.open()
    journal.save(_record("kept"))
    for i in range(200):
        journal.save(_record(f"e{i}"))
        journal.save(_record(f"e{i}", RunState.FINISHED, exit_code=0))
        journal.forget([f"e{i}"])
        assert len((tmp_path / JOURNAL_FILE).read_text().splitlines()) <= 20
    assert list(_by_id(tmp_path)) == ["kept"]


def test_records_an_older_runtime_left_per_directory_move_into_the_journal(
    tmp_path: Path,
) -> None:
    for eid, output in (("old1", False), ("old2", True)):
        directory = tmp_path / eid
        directory.mkdir()
        (directory / "state.json").write_text(json.dumps(
            _record(eid, RunState.FINISHED, exit_code=0).to_json()))
        if output:
            (directory / "output.log").write_bytes(b"hello\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text("{not json")
    journal = RecordJournal(tmp_path)
    assert sorted(r.execution_id for r in journal.open()) == ["old1", "old2"]
    assert not (tmp_path / "old1").exists()  # nothing but its record was there
    assert (tmp_path / "old2" / "output.log").read_bytes() == b"hello\n"
    assert not (tmp_path / "old2" / "state.json").exists()
    assert sorted(_by_id(tmp_path)) == ["old1", "old2"]


def test_a_foreign_line_is_skipped(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_FILE).write_text(
        '[1, 2]\n{"execution_id": 5}\n{"unrelated": true}\n'
        + json.dumps(_record("a").to_json()) + "\n")
    assert list(_by_id(tmp_path)) == ["a"]
