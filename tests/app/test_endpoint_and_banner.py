"""Client commands find the control plane started from their directory, and the banner's commands
work exactly as printed: no URL, port or token to type, whatever the data dir."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from shepherd.app.banner import cli_invocation
from shepherd.app.endpoint import publish_endpoint
from shepherd.cli.target import read_endpoint, resolve_target
from tests.fixtures.fleet import running_fleet, wait_until

FLEET = """
agents:
  - name: echo
    command: ["cat"]
  - name: other
    command: ["cat"]
"""


def _client_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")}


@pytest.mark.slow
def test_the_banner_commands_work_as_printed_from_the_start_directory(tmp_path: Path) -> None:
    with running_fleet(tmp_path, FLEET) as fleet:  # data dir tmp/data, a random port
        hint = wait_until(lambda: next(
            (line.strip() for line in fleet.output if "agents ls" in line), None), 10, "hints")
        command = shlex.split(hint.split("  ")[0])
        done = subprocess.run([*command, "--json"], cwd=tmp_path, env=_client_env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert {a["name"] for a in json.loads(done.stdout)} == {"echo", "other"}
        assert (tmp_path / ".shepherd" / "endpoint.json").exists()
    assert not (tmp_path / ".shepherd" / "endpoint.json").exists()
    assert not (fleet.data_dir / "endpoint.json").exists()


def test_an_endpoint_file_names_the_url_and_token_path_never_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SHEPHERD_URL", "SHEPHERD_TOKEN", "SHEPHERD_DATA_DIR", "SHEPHERD_PORT"):
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "elsewhere"
    data_dir.mkdir()
    (data_dir / "admin.token").write_text("shp_secret\n")
    published = publish_endpoint(data_dir, "http://127.0.0.1:9999")
    record = json.loads((tmp_path / ".shepherd" / "endpoint.json").read_text())
    assert "shp_secret" not in json.dumps(record)
    assert resolve_target(None, None).url == "http://127.0.0.1:9999"
    assert resolve_target(None, None).token == "shp_secret"
    published.withdraw()
    assert resolve_target(None, None).url == "http://127.0.0.1:8765"


def test_an_endpoint_left_by_a_dead_process_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "endpoint.json").write_text(json.dumps(
        {"url": "http://127.0.0.1:1", "token_path": None, "pid": gone.pid}))
    assert read_endpoint(tmp_path) is None


@pytest.mark.parametrize(
    ("argv0", "expected_end"),
    [
        ("/work/x/.venv/bin/shepherd", ".venv/bin/shepherd"),
        ("/somewhere/else/bin/shepherd", "/somewhere/else/bin/shepherd"),
        ("/work/x/src/shepherd/__main__.py", " -m shepherd"),
    ],
)
def test_the_banner_spells_the_cli_as_this_process_was_invoked(
    argv0: str, expected_end: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli_invocation(argv0, Path("/work/x")).endswith(expected_end)
