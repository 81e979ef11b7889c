"""The runtime's batch routes: several starts in one request, exited events that carry the
finished result while the runtime holds it, and acks of many results in one request."""

from __future__ import annotations

import asyncio

from tests.agent_runtime.conftest import MakeApi


def _start(eid: str, text: str = "") -> dict[str, object]:
    return {"execution_id": eid, "input": text, "timeout_s": 30}


async def test_a_batch_starts_each_execution_once_in_order(make_api: MakeApi) -> None:
    api = await make_api(["sh", "-c", 'cat; echo " $SHEPHERD_EXECUTION_ID"'])
    body = {"executions": [_start("b1", "one"), _start("b2", "two")]}
    answer = await api.http.post("/v1/starts", json=body)
    assert answer.status_code == 202, answer.text
    assert [s["execution_id"] for s in answer.json()["started"]] == ["b1", "b2"]
    again = await api.http.post("/v1/starts", json=body)  # idempotent, like a single start
    assert [s["pid"] for s in again.json()["started"]] == [
        s["pid"] for s in answer.json()["started"]]
    for eid, text in (("b1", "one"), ("b2", "two")):
        assert (await api.finished(eid))["output_tail"] == f"{text} {eid}\n"


async def test_a_batch_with_an_unusable_id_starts_nothing(make_api: MakeApi) -> None:
    api = await make_api(["true"])
    refused = await api.http.post("/v1/starts", json={"executions": [_start("ok"),
                                                                      _start("..")]})
    assert refused.status_code == 422 and "execution_id" in refused.json()["message"]
    empty = await api.http.post("/v1/starts", json={"executions": []})
    assert empty.status_code == 422
    assert (await api.http.get("/v1/executions")).json()["executions"] == []


async def test_an_exited_event_carries_the_result_until_it_is_acked(make_api: MakeApi) -> None:
    api = await make_api(["sh", "-c", "cat >/dev/null; echo hello; exit 3"])
    await api.start("e1")
    await api.finished("e1")
    page = (await api.http.get("/v1/events", params={"after": 0})).json()
    [exited] = [e for e in page["events"] if e["kind"] == "exited"]
    assert exited["result"]["exit_code"] == 3
    assert exited["result"]["output_tail"] == "hello\n"
    acked = await api.http.post("/v1/acks", json={"execution_ids": ["e1", "never-here"]})
    assert acked.json() == {"acked": ["e1", "never-here"], "running": []}
    assert not (api.config.executions_dir / "e1").exists()
    page = (await api.http.get("/v1/events", params={"after": 0})).json()
    [exited] = [e for e in page["events"] if e["kind"] == "exited"]
    assert exited["result"] is None  # forgotten: the event stays, the result is gone


async def test_a_running_execution_is_not_acked_in_a_batch(make_api: MakeApi) -> None:
    api = await make_api(["sleep", "30"])
    await api.start("e1")
    acked = await api.http.post("/v1/acks", json={"execution_ids": ["e1", "../../x"]})
    assert acked.json() == {"acked": ["../../x"], "running": ["e1"]}
    assert (await api.http.get("/v1/executions/e1")).json()["state"] == "running"
    await api.http.post("/v1/executions/e1/terminate")


async def test_a_poll_until_an_exit_is_not_woken_by_a_start(make_api: MakeApi) -> None:
    api = await make_api(["sh", "-c", "cat >/dev/null; sleep 0.5"])
    poll = asyncio.create_task(api.http.get(
        "/v1/events", params={"after": 0, "wait": 10, "until": "exited"}))
    await api.start("e1")
    await asyncio.sleep(0.2)
    assert not poll.done()  # the start alone does not answer it
    page = (await poll).json()
    assert [e["kind"] for e in page["events"]] == ["started", "exited"]
    bad = await api.http.get("/v1/events", params={"until": "later"})
    assert bad.status_code == 422 and "until" in bad.json()["message"]


async def test_a_poll_acks_the_results_it_names_before_it_waits(make_api: MakeApi) -> None:
    api = await make_api(["sh", "-c", "cat >/dev/null; echo hello"])
    await api.start("e1")
    await api.finished("e1")
    first = (await api.http.get("/v1/events", params={"after": 0})).json()
    assert first["acked"] is None  # no ack asked: none reported
    page = (await api.http.get("/v1/events", params={
        "after": first["last_seq"], "wait": 0.2, "ack": ["e1", "never-here"]})).json()
    assert (page["events"], page["acked"]) == ([], ["e1", "never-here"])
    assert (await api.http.get("/v1/executions")).json()["executions"] == []
    assert not (api.config.executions_dir / "e1").exists()
    too_many = await api.http.get("/v1/events", params={"ack": [f"e{i}" for i in range(65)]})
    assert too_many.status_code == 422 and "ack" in too_many.json()["message"]
