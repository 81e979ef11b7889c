"""The dashboard's Redis readers and writers on a real redis-server: sessions and one-time codes
(digest keys, TTLs, single use), presence and controller reports read in one round trip."""

from __future__ import annotations

import json

from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.presence import RuntimePresence
from shepherd.stores.redis.reports import ControllerStatus
from tests.stores.redis.helpers import keyspace, ttls_s


async def test_a_session_is_one_key_with_its_ttl_and_goes_when_deleted(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    sessions = redis_handle.sessions
    await sessions.put_session("d1", {"token_id": "tok_1", "csrf": "c"}, ttl_s=600)
    assert await sessions.get_session("d1") == {"token_id": "tok_1", "csrf": "c"}
    assert await sessions.get_session("other") is None
    ttls = await ttls_s(redis_handle)
    assert set(ttls) == {keys.web_session("d1")}
    assert 590 < ttls[keys.web_session("d1")] <= 600
    await sessions.delete_session("d1")
    assert await keyspace(redis_handle) == set()


async def test_a_session_key_holding_something_else_reads_as_no_session(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    await redis_handle.client.set(keys.web_session("d1"), json.dumps(["not", "a", "dict"]))
    assert await redis_handle.sessions.get_session("d1") is None


async def test_a_signin_code_is_taken_once_and_never_overwritten(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    sessions = redis_handle.sessions
    assert await sessions.put_signin_code("c1", "tok_1", ttl_s=60) is True
    assert await sessions.put_signin_code("c1", "tok_2", ttl_s=60) is False
    assert 50 < (await ttls_s(redis_handle))[keys.web_signin_code("c1")] <= 60
    assert await sessions.peek_signin_code("c1") == "tok_1"
    assert await sessions.take_signin_code("c1") == "tok_1"
    assert await sessions.take_signin_code("c1") is None
    assert await sessions.peek_signin_code("c1") is None
    assert await keyspace(redis_handle) == set()


async def test_presence_reads_slots_last_seen_and_boot_of_every_agent(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    await redis_handle.client.zadd(keys.slots("a"), {"e1": 1, "e2": 2})
    await redis_handle.client.hset(keys.agent_cursor("a"), mapping={
        "seq": 3, "boot_id": "b1", "seen_at_ms": 1_000, "booted_at_ms": 500})
    found = await redis_handle.presence.read(["a", "b"])
    assert found == {
        "a": RuntimePresence(2, 1_000, 500, "b1"),
        "b": RuntimePresence(0, None, None, None),
    }
    assert await redis_handle.presence.read([]) == {}


async def test_controller_reports_show_the_last_pass_and_the_leader(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    summary = {"tick_at_ms": 1_000, "duration_ms": 2.5, "report": {"claimed": 3}}
    await redis_handle.client.set(keys.controller_report("dispatcher"), json.dumps(summary))
    await redis_handle.client.set(keys.controller_lease("dispatcher"), "host:1:ab")
    await redis_handle.client.set(keys.controller_report("broken"), "{not json")
    found = await redis_handle.reports.read(["dispatcher", "monitor", "broken"])
    assert found == [
        ControllerStatus("dispatcher", 1_000, 2.5, {"claimed": 3}, "host:1:ab"),
        ControllerStatus("monitor", None, None, {}, None),
        ControllerStatus("broken", None, None, {}, None),
    ]
