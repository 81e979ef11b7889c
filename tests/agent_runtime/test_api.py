"""The runtime API in process (ASGI transport, real children): errors, auth, retention."""

from __future__ import annotations

import asyncio
import stat
from typing import Any

import pytest

from shepherd.agent_runtime.journal import read_records
from tests.agent_runtime.conftest import MakeApi


async def test_without_a_token_one_is_generated_into_the_data_dir_with_mode_0600(
    make_api: MakeApi,
) -> None:
    api = await make_api(["true"], token=None)
    path = api.config.token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == api.state.token
    assert (await api.http.get("/v1/executions")).status_code == 200
    denied = await api.http.get("/v1/executions", headers={"Authorization": "Bearer wrong"})
    assert (denied.status_code, denied.json()["code"]) == (401, "unauthenticated")


async def test_the_child_sees_its_execution_id_attempt_and_agent_in_its_environment(
    make_api: MakeApi,
) -> None:
    api = await make_api(["sh", "-c",
                          'echo "$SHEPHERD_EXECUTION_ID/$SHEPHERD_ATTEMPT/$SHEPHERD_AGENT"'])
    assert (await api.start("env-1")).status_code == 202
    assert (await api.finished("env-1"))["output_tail"].strip() == "env-1/1/inproc"


@pytest.mark.parametrize("eid", [".", ".."])
async def test_dot_ids_are_refused_with_422_naming_execution_id(
    make_api: MakeApi, eid: str
) -> None:
    api = await make_api(["true"])
    kept = api.config.executions_dir / "kept"
    kept.mkdir(parents=True)
    response = await api.start(eid)
    assert response.status_code == 422
    assert response.json()["message"].startswith("execution_id:")
    assert (await api.http.delete(f"/v1/executions/{eid}")).status_code in (404, 405)
    assert kept.is_dir()


@pytest.mark.parametrize(("body", "field"), [
    ({"execution_id": "e1", "timeout_s": 1, "bogus": 1}, "bogus"),
    ({"execution_id": "e1", "timeout_s": "soon"}, "timeout_s"),
    ({"execution_id": "bad id", "timeout_s": 1}, "execution_id"),
])
async def test_a_malformed_start_body_is_422_naming_the_field(
    make_api: MakeApi, body: dict[str, Any], field: str
) -> None:
    api = await make_api(["true"])
    response = await api.http.post("/v1/executions", json=body)
    assert response.status_code == 422
    assert (response.json()["code"], field in response.json()["message"]) == (
        "invalid_request", True)


async def test_a_body_that_is_not_json_is_422_not_500(make_api: MakeApi) -> None:
    api = await make_api(["true"])
    response = await api.http.post("/v1/executions", content=b"{not json",
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and set(response.json()) == {"code", "message"}


async def test_unknown_routes_and_methods_answer_with_an_error_body(make_api: MakeApi) -> None:
    api = await make_api(["true"])
    missing = await api.http.get("/v2/nothing")
    wrong = await api.http.put("/v1/executions")
    assert (missing.status_code, missing.json()["code"]) == (404, "route_not_found")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    unknown = await api.http.get("/v1/executions/nope")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "execution_not_found")


async def test_a_wait_beyond_the_cap_is_accepted_and_a_negative_one_is_not(
    make_api: MakeApi,
) -> None:
    api = await make_api(["true"])
    await api.start("e1")
    await api.finished("e1")
    assert (await api.http.get("/v1/executions/e1", params={"wait": 10_000})).status_code == 200
    negative = await api.http.get("/v1/events", params={"wait": -1})
    assert negative.status_code == 422 and "wait" in negative.json()["message"]


async def test_acking_a_running_execution_is_refused_and_keeps_the_child(
    make_api: MakeApi,
) -> None:
    api = await make_api(["sleep", "30"])
    await api.start("e1")
    refused = await api.http.delete("/v1/executions/e1")
    assert (refused.status_code, refused.json()["code"]) == (409, "invalid_transition")
    assert (await api.http.get("/v1/executions/e1")).json()["state"] == "running"
    assert (await api.http.post("/v1/executions/e1/terminate")).json()["result"] == "terminated"
    assert (await api.http.delete("/v1/executions/e1")).status_code == 204
    assert not (api.config.executions_dir / "e1").exists()
    assert read_records(api.config.executions_dir) == []  # forgotten on disk too


async def test_a_finished_result_is_forgotten_retention_s_after_it_finished(
    make_api: MakeApi,
) -> None:
    api = await make_api(["true"], retention_s=0.2)
    await api.start("e1")
    await api.finished("e1")
    await asyncio.sleep(0.3)
    assert (await api.http.get("/v1/executions/e1")).status_code == 404
    assert not (api.config.executions_dir / "e1").exists()


async def test_beyond_max_retained_the_oldest_finished_result_goes_first(
    make_api: MakeApi,
) -> None:
    api = await make_api(["true"], max_retained=2)
    for eid in ("e1", "e2", "e3"):
        await api.start(eid)
        await api.finished(eid)
    listed = (await api.http.get("/v1/executions")).json()["executions"]
    assert sorted(e["execution_id"] for e in listed) == ["e2", "e3"]


async def test_children_that_never_read_their_input_do_not_hold_up_the_others(
    make_api: MakeApi,
) -> None:
    api = await make_api(["sh", "-c", 'case "$SHEPHERD_EXECUTION_ID" in stuck*) sleep 30;; '
                                      '*) wc -c;; esac'])
    big = "x" * (256 * 1024)  # more than a pipe holds, so each feed stays pending
    for i in range(10):
        await api.start(f"stuck{i}", big)
    await api.start("reader", big)
    assert (await api.finished("reader"))["output_tail"].strip() == str(len(big))
    assert (await api.http.get("/health")).json()["running"] == 10
