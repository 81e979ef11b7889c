"""The collector: read-only by construction (proved on its source), reading real processes, and
skipping one that vanished mid-scan."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psutil
import pytest

from shepherd.sentinel import collector
from shepherd.sentinel.collector import (
    ATTRS,
    DETAIL_ATTRS,
    collect_process_table,
    read_details,
    read_process,
)

# What the collector may import, name by name.
ALLOWED_IMPORTS = {
    ("__future__", "annotations"), ("os", "getpgid"), ("psutil", None),
    ("collections.abc", "Iterable"), ("dataclasses", "replace"),
    ("shepherd.core.process_table", "ProcessRow"),
}
# Anything that could signal, spawn, wait for or change a process, or read its environment
# (``os.system`` needs ``os``, which the imports above rule out; ``.system`` is a CPU time).
FORBIDDEN_NAMES = {
    "kill", "killpg", "terminate", "send_signal", "suspend", "resume", "wait", "wait_procs",
    "environ", "Popen", "popen", "spawn", "fork", "execv", "execvp",
    "posix_spawn", "create_subprocess_exec", "create_subprocess_shell", "run", "call",
    "check_call", "check_output", "nice", "ionice", "rlimit", "cpu_affinity", "getattr",
    "eval", "exec", "compile", "__import__", "import_module", "open", "setattr",
}
# What the collector may use of psutil itself.
PSUTIL_USES = {"process_iter", "Process", "Error", "STATUS_ZOMBIE"}
# Process attributes it may read: none of them is the environment, files or memory.
READABLE = {"pid", "ppid", "name", "cmdline", "create_time", "cpu_times", "username", "status"}


def _source_tree() -> tuple[ast.Module, set[int]]:
    tree = ast.parse(inspect.getsource(collector))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return tree, docstrings


def test_the_collector_imports_only_what_reads() -> None:
    tree, _ = _source_tree()
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {(alias.name, None) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {(node.module or "", alias.name) for alias in node.names}
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


def test_the_collector_names_nothing_that_signals_spawns_or_reads_an_environment() -> None:
    tree, docstrings = _source_tree()
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            used.add(node.attr)
            if isinstance(node.value, ast.Name) and node.value.id == "psutil":
                assert node.attr in PSUTIL_USES, f"psutil.{node.attr}"
        elif isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            assert "environ" not in node.value, node.value
    assert not used & FORBIDDEN_NAMES, used & FORBIDDEN_NAMES


def test_the_attribute_lists_read_no_environment_files_or_memory() -> None:
    assert set(ATTRS) | set(DETAIL_ATTRS) <= READABLE


@pytest.fixture
def marked_sleep() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real ``sleep 60`` whose command line reads ``pytest-fake-<id> 60``."""
    marker = f"pytest-fake-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen([marker, "60"], executable=shutil.which("sleep"))
    yield process, marker
    process.kill()
    process.wait()


def test_a_real_process_is_read_with_its_identity_command_line_group_and_cpu_time(
    marked_sleep: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, marker = marked_sleep
    rows = {r.pid: r for r in collect_process_table(with_groups=True)}
    row = rows[process.pid]
    assert row.argv == (marker, "60")
    assert row.create_time_ms == round(psutil.Process(process.pid).create_time() * 1000)
    assert row.pgid is not None and row.ppid is not None
    assert (row.username, row.cpu_s) == (None, None)  # details are read for watched rows only
    assert not row.zombie
    detailed = read_details([row])[process.pid]
    assert detailed.username == psutil.Process(process.pid).username()
    assert detailed.cpu_s is not None and detailed.cpu_s >= 0


def test_without_groups_the_group_is_not_read(
    marked_sleep: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, _ = marked_sleep
    rows = {r.pid: r for r in collect_process_table(with_groups=False)}
    assert rows[process.pid].pgid is None
    assert read_details([rows[process.pid]])[process.pid].pgid is not None  # for its alert


def test_a_process_that_vanished_mid_scan_is_skipped_not_an_error() -> None:
    process = subprocess.Popen(["sleep", "60"])
    handle = psutil.Process(process.pid)
    row = read_process(handle, with_group=True)
    assert row is not None
    process.kill()
    process.wait()  # reaped: the pid is gone
    assert read_process(handle, with_group=True) is None
    assert read_details([row]) == {}


def test_details_are_not_read_for_a_pid_that_now_belongs_to_another_process(
    marked_sleep: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, _ = marked_sleep
    row = read_process(psutil.Process(process.pid), with_group=False)
    assert row is not None
    older = replace(row, create_time_ms=row.create_time_ms - 5_000)
    assert read_details([older]) == {}


def test_a_scan_never_asks_a_process_for_its_environment(
    monkeypatch: pytest.MonkeyPatch, marked_sleep: tuple[subprocess.Popen[bytes], str],
) -> None:
    asked: list[int] = []
    original = psutil.Process.environ

    def spy(self: psutil.Process) -> dict[str, str]:
        asked.append(self.pid)
        return original(self)

    monkeypatch.setattr(psutil.Process, "environ", spy)
    assert collect_process_table(with_groups=True)
    assert asked == []
