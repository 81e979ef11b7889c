"""Supervising real children in this process's runtime: the exit is seen from the process itself,
what a child leaves behind is stopped or reported, unread input is recorded, the environment is
clean."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import pytest

from shepherd.agent_client.protocol import RunState, StartRequest
from shepherd.agent_runtime.environment import HOST_VARIABLES
from tests.agent_runtime.conftest import MakeApi
from tests.fixtures.processes import gone, kill_processes_of

# Starts sleep in a new session, still holding the output, and exits. Popen returns only once
# sleep runs, so it has left the group before the child exits: with `( setsid sleep & )` the
# child may exit first, and what is still in its group at its exit is stopped, not reported.
ESCAPING_DAEMON = ["python3", "-c", "import subprocess; print('done', flush=True); "
                   "subprocess.Popen(['sleep', '120'], start_new_session=True)"]


def unique(prefix: str) -> str:
    """Execution ids unique on this machine: cleanup finds strays by the id in their env."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_a_daemon_that_escaped_the_group_neither_holds_the_run_open_nor_is_killed(
    make_api: MakeApi,
) -> None:
    api = await make_api(ESCAPING_DAEMON)
    eid = unique("escape")
    await api.start(eid, timeout_s=300)
    try:
        state = await api.finished(eid)  # at its exit, not at the 300 s timeout
        assert (state["exit_code"], state["error_class"]) == (0, None)
        assert state["output_tail"].strip() == "done"
        [leftover] = state["leftovers"]
        assert leftover["name"] == "sleep"
        assert os.getsid(leftover["pid"]) == leftover["pid"]  # it leads a session of its own
        assert (await api.http.get("/health")).json()["running"] == 0
    finally:
        killed = kill_processes_of(eid)
    assert killed == [leftover["pid"]]  # the runtime reported it and left it alone


async def test_the_racy_setsid_daemon_of_the_report_ends_its_run_at_the_exit_either_way(
    make_api: MakeApi,
) -> None:
    """`( setsid sleep & ); echo done`: sleep may or may not have left the group when the child
    exits. Either way the run ends at the exit: reported if it escaped (under the name it had
    when seen), stopped if it had not."""
    api = await make_api(["sh", "-c", "( setsid sleep 120 & ); echo done"])
    eid = unique("racy")
    await api.start(eid, timeout_s=300)
    try:
        state = await api.finished(eid)
        assert (state["exit_code"], state["error_class"]) == (0, None)
        # Caught between its setsid() and its exec of sleep, it is still named setsid.
        assert [x["name"] for x in state["leftovers"]] in ([], ["sleep"], ["setsid"])
    finally:
        killed = kill_processes_of(eid)
    assert killed == [x["pid"] for x in state["leftovers"]]


async def test_what_a_child_leaves_in_its_group_is_stopped_when_it_exits(
    make_api: MakeApi,
) -> None:
    api = await make_api(["sh", "-c", "sleep 120 & echo $!"])
    await api.start("e1", timeout_s=300)
    state = await api.finished("e1")
    assert (state["exit_code"], state["error_class"], state["leftovers"]) == (0, None, [])
    assert gone(int(state["output_tail"].split()[0]))


async def test_a_group_member_that_ignores_sigterm_gets_sigkill_after_the_grace(
    make_api: MakeApi,
) -> None:
    api = await make_api(["sh", "-c", "(trap '' TERM; exec sleep 120) & echo $!"])
    await api.start("e1", timeout_s=300)
    state = await api.finished("e1")
    assert (state["exit_code"], state["leftovers"]) == (0, [])
    assert gone(int(state["output_tail"].split()[0]))


@pytest.mark.parametrize(("command", "text", "exit_code", "unread"), [
    (["sh", "-c", "exit 3"], "x", 3, True),
    (["sh", "-c", "exit 3"], "", 3, False),
    (["sh", "-c", "cat >/dev/null"], "x" * (300 * 1024), 0, False),
    (["sh", "-c", "read -r line"], "one\ntwo\n", 0, True),
    (["true"], "x" * (1024 * 1024), 0, True),
])
async def test_the_exit_code_is_the_result_and_an_unread_input_is_recorded_beside_it(
    make_api: MakeApi, command: list[str], text: str, exit_code: int, unread: bool
) -> None:
    api = await make_api(command)
    await api.start("e1", text)
    state = await api.finished("e1")
    assert (state["exit_code"], state["error_class"], state["input_unread"]) == (
        exit_code, None, unread)


async def test_the_child_environment_has_host_basics_agent_env_and_ids_and_no_other_setting(
    make_api: MakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "SHEPHERD_AGENT_TOKEN": "token-0123456789abcdef", "SHEPHERD_DATABASE_URL": "pg://u:pw@db",
        "SHEPHERD_REDIS_URL": "redis://:pw@cache", "SHEPHERD_PORT": "9999",
        "AWS_SECRET_ACCESS_KEY": "not-for-children",
    }
    for name, value in {**secrets, "LC_TIME": "C", "TZ": "UTC"}.items():
        monkeypatch.setenv(name, value)
    agent_env = {"GREETING": "hello", "SHEPHERD_DATABASE_URL": "sneaky"}
    api = await make_api(["env"], agent_env=agent_env)
    await api.start("env-1", timeout_s=30)
    dump = (await api.finished("env-1"))["output_tail"]
    seen = dict(line.split("=", 1) for line in dump.splitlines())
    assert seen["GREETING"] == "hello" and seen["LC_TIME"] == "C" and seen["TZ"] == "UTC"
    assert (seen["SHEPHERD_EXECUTION_ID"], seen["SHEPHERD_ATTEMPT"], seen["SHEPHERD_AGENT"]) == (
        "env-1", "1", "inproc")
    allowed = {*HOST_VARIABLES, "GREETING", "SHEPHERD_EXECUTION_ID", "SHEPHERD_ATTEMPT",
               "SHEPHERD_AGENT"}
    assert {n for n in seen if not n.startswith("LC_")} <= allowed
    assert not any(value in dump for value in (*secrets.values(), "sneaky"))


async def test_a_command_not_on_the_path_is_spawn_failed_naming_it(make_api: MakeApi) -> None:
    api = await make_api(["no-such-command-for-shepherd"])
    await api.start("e1")
    state = await api.finished("e1")
    assert (state["state"], state["error_class"]) == ("finished", "spawn_failed")
    assert "no-such-command-for-shepherd" in state["error"]


async def test_without_pidfds_the_exit_is_still_seen_from_the_process(
    make_api: MakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open")
    api = await make_api(ESCAPING_DAEMON)
    eid = unique("nopidfd")
    await api.start(eid, timeout_s=300)
    try:
        state = await api.finished(eid)
        assert (state["exit_code"], [x["name"] for x in state["leftovers"]]) == (0, ["sleep"])
    finally:
        kill_processes_of(eid)


async def test_a_timeout_and_a_terminate_still_stop_the_group_and_reap_the_child(
    make_api: MakeApi,
) -> None:
    api = await make_api(["sh", "-c", "trap '' TERM; sleep 120 & echo $!; sleep 120"])
    await api.start("slow", timeout_s=1)
    await api.start("stopped", timeout_s=300)
    while not (await api.http.get("/v1/executions/stopped")).json()["output_tail"]:
        await asyncio.sleep(0.01)  # the trap is set once the child printed
    assert (await api.http.post("/v1/executions/stopped/terminate")).json()["result"] == (
        "terminated")
    for eid, error_class in (("slow", "timed_out"), ("stopped", "terminated")):
        state = await api.finished(eid)
        assert (state["error_class"], state["exit_code"]) == (error_class, -signal.SIGKILL)
        assert gone(int(state["output_tail"].split()[0]))
    health = (await api.http.get("/health")).json()
    assert (health["running"], health["zombies"]) == (0, 0)


async def test_a_child_whose_supervision_never_started_is_still_stopped_at_shutdown(
    make_api: MakeApi,
) -> None:
    api = await make_api(["sleep", "120"])
    registry = api.state.registry
    record = await registry.start(StartRequest(execution_id="e1", input="", timeout_s=60))
    [task] = registry._tasks
    task.cancel()  # no await since start() made it: the task never ran a step
    await registry.shutdown()
    assert record.pid is not None and gone(record.pid)
    assert (record.state, record.error_class) == (RunState.FINISHED, "terminated")
