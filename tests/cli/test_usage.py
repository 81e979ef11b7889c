"""Usage errors and the version flag: Typer's usage message and exit 2, never a traceback,
whichever click the installed Typer is built on. No control plane is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shepherd import __version__
from shepherd.app import main
from shepherd.cli.output import fail


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("nosuchcmd",), "No such command"),
        (("run",), "Missing argument"),
        (("executions", "ls", "--bogus"), "No such option"),
        (("agents", "nosuch"), "No such command"),
        (("executions", "ls", "--limit", "0"), "--limit"),
    ],
)
def test_a_usage_error_prints_the_usage_and_exits_2(run, args: tuple[str, ...], says: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(*args)
    assert code == 2
    assert "Usage: shepherd" in err and says in err
    assert "Traceback" not in out + err


def test_bare_shepherd_shows_help_and_exits_2(run) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run()
    assert code == 2
    assert "Usage: shepherd" in out + err and "Traceback" not in out + err


def test_version_prints_the_version(run) -> None:  # type: ignore[no-untyped-def]
    assert run("--version")[:2] == (0, f"shepherd {__version__}\n")


def test_help_is_written_for_users(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("--help")
    assert code == 0
    assert "self-healing control plane" in out and "Remote" not in out


def test_error_lines_keep_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    fail("name must match ^[a-z0-9][a-z0-9_.-]{0,62}$")
    assert "^[a-z0-9][a-z0-9_.-]{0,62}$" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        (b"ok\xff\xfe", "stdin is not UTF-8 text (byte 0xff at offset 2)"),
        ("é\x00".encode(), "stdin contains a NUL character (at offset 2)"),
    ],
)
def test_an_input_on_stdin_that_cannot_be_sent_as_is_is_one_line_and_exit_2(
    stdin: bytes, says: str, tmp_path: Path
) -> None:
    env = {**os.environ, "SHEPHERD_URL": "http://127.0.0.1:9", "SHEPHERD_TOKEN": "t" * 20,
           "SHEPHERD_DATA_DIR": str(tmp_path), "LC_ALL": "C.UTF-8"}
    done = subprocess.run([sys.executable, "-m", "shepherd", "run", "echo", "-"], input=stdin,
                          env=env, capture_output=True, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
