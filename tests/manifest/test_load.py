"""Manifest validation: every error names the file, the path inside it and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from shepherd.core.models import OverlapPolicy
from shepherd.errors import ManifestError
from shepherd.manifest.load import load_manifest, parse_manifest

GOOD = """
agents:
  - name: echo
    command: sh -c 'cat; echo done'
    max_parallel: 2
    tags: [demo]
  - name: remote
    url: http://127.0.0.1:9000
schedules:
  - agent: echo
    cron: "*/5 * * * *"
    input: hello
    overlap: queue
"""


def test_a_good_manifest_parses_with_defaults() -> None:
    manifest = parse_manifest(GOOD, "fleet.yaml")
    echo, remote = manifest.agents
    assert echo.command == ("sh", "-c", "cat; echo done")
    assert echo.timeout_s == 900 and echo.max_backlog_depth == 50
    assert remote.command is None and remote.max_parallel == 3
    assert manifest.schedules[0].overlap is OverlapPolicy.QUEUE
    assert manifest.schedules[0].timezone == "UTC"


def test_an_agent_may_require_its_input_read_and_give_its_children_an_env() -> None:
    text = "agents:\n - name: a\n   command: x\n   require_input_read: true\n   env: {K_1: v}\n"
    [agent] = parse_manifest(text).agents
    assert (agent.require_input_read, agent.env) == (True, {"K_1": "v"})
    assert parse_manifest("agents:\n - name: a\n   command: x\n").agents[0].require_input_read is (
        False)


def test_a_command_list_is_taken_as_argv_without_a_shell() -> None:
    manifest = parse_manifest("agents:\n - name: a\n   command: [echo, 'a b', '$HOME']\n")
    assert manifest.agents[0].command == ("echo", "a b", "$HOME")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "agents:\n - name: a\n   command: x\n - name: b\n   command: y\n   max_parallel: 0\n",
            "fleet.yaml: agents[1].max_parallel: Input should be greater than or equal to 1",
        ),
        ("agents:\n - name: a\n   command: x\n   colour: red\n", "agents[0].colour: unknown key"),
        ("agents:\n - name: a\n", "agents[0]: give exactly one of 'command'"),
        ("agents:\n - name: Bad Name\n   command: x\n", "agents[0].name: String should match"),
        ("agents:\n - name: a\n   command: ''\n", "agents[0].command: command must not be empty"),
        ("agents:\n - name: a\n   command: \"it's\"\n", "agents[0].command: command cannot"),
        (
            "agents:\n - name: a\n   command: x\nschedules:\n - agent: a\n   cron: nope\n",
            "schedules[0].cron: 'nope' is not a valid cron expression",
        ),
        (
            "agents:\n - name: a\n   command: x\nschedules:\n"
            " - agent: a\n   cron: '* * * * *'\n   timezone: Mars/Base\n",
            "schedules[0].timezone: 'Mars/Base' is not an IANA time zone",
        ),
        (
            "agents:\n - name: a\n   command: x\nschedules:\n - agent: b\n   cron: '* * * * *'\n",
            "schedules[0].agent: no agent named 'b' in this file",
        ),
        (
            "agents:\n - name: a\n   command: x\n - name: a\n   command: y\n",
            "agents[1].name: 'a' is already used by another agent",
        ),
        (
            "agents:\n - name: a\n   command: x\nschedules:\n"
            " - {agent: a, cron: '* * * * *', overlap: maybe}\n",
            "schedules[0].overlap: Input should be 'skip' or 'queue'",
        ),
        (
            "agents:\n - name: a\n   command: x\n   max_attempts: 0\n",
            "agents[0].max_attempts: Input should be greater than or equal to 1",
        ),
        (
            "agents:\n - name: a\n   command: x\nschedules:\n"
            " - {agent: a, cron: '* * * * *', retry_on_failure: perhaps}\n",
            "schedules[0].retry_on_failure: Input should be a valid boolean",
        ),
        ("agents: [", "fleet.yaml: not valid YAML"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("agents:\n - name: a\n   command: x\nextra: 1\n", "extra: unknown key"),
        (
            "agents:\n - name: a\n   command: x\n   env: {SHEPHERD_AGENT_TOKEN: t}\n",
            "agents[0].env: 'SHEPHERD_AGENT_TOKEN': names starting with SHEPHERD_",
        ),
        ("agents:\n - name: a\n   command: x\n   env: {'A-B': t}\n",
         "agents[0].env: 'A-B' is not a variable name"),
        ("agents:\n - name: a\n   command: x\n   require_input_read: maybe\n",
         "agents[0].require_input_read: Input should be a valid boolean"),
    ],
)
def test_invalid_manifests_say_where_and_what(text: str, expected: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "fleet.yaml")
    assert expected in info.value.message
    assert info.value.message.startswith("fleet.yaml: ")


def test_a_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path / "nope.yaml")


def test_an_empty_file_is_an_empty_fleet(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("")
    assert load_manifest(path).agents == ()


def test_the_bundled_demo_fleet_is_valid() -> None:
    from shepherd.app.commands import DEMO_MANIFEST

    manifest = load_manifest(DEMO_MANIFEST)
    assert {a.name for a in manifest.agents} == {"echo", "slow", "flaky", "burst", "early-exit"}


def test_a_per_agent_token_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ManifestError, match=r"agents\[0\]\.token: unknown key"):
        parse_manifest("agents:\n - name: a\n   url: http://h:1\n   token: x\n", "f.yaml")


def test_the_retry_policy_defaults_to_one_attempt_and_schedules_inherit_it() -> None:
    manifest = parse_manifest(
        "agents:\n - name: a\n   command: x\n   max_attempts: 3\n   retry_on_failure: true\n"
        "schedules:\n - {agent: a, cron: '* * * * *'}\n"
        " - {agent: a, cron: '* * * * *', max_attempts: 1, name: once}\n", "fleet.yaml")
    assert (manifest.agents[0].max_attempts, manifest.agents[0].retry_on_failure) == (3, True)
    assert [s.max_attempts for s in manifest.schedules] == [None, 1]
    assert parse_manifest("agents:\n - name: b\n   command: x\n", "f").agents[0].max_attempts == 1
def test_a_schedule_input_with_a_nul_is_refused_naming_its_path() -> None:
    text = GOOD.replace("input: hello", 'input: "a\\0b"')
    with pytest.raises(ManifestError, match=r"schedules\[0\]\.input: .*NUL"):
        parse_manifest(text, "fleet.yaml")
