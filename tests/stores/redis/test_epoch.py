"""The epoch key on a real redis-server: read in one round trip, sealed with the run_id."""

from __future__ import annotations

from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from tests.stores.redis.helpers import ttls_s


async def test_a_fresh_redis_reads_as_no_epoch_and_no_instance_with_its_run_id(
    redis_handle: RedisHandle,
) -> None:
    reading = await redis_handle.epoch.read()
    assert (reading.epoch, reading.instance) == (None, None)
    assert len(reading.run_id) == 40  # redis-server's run_id: 40 hex characters
    assert await ttls_s(redis_handle) == {}


async def test_sealing_stores_the_run_id_without_a_ttl(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    await redis_handle.client.set(keys.instance(), "sql-1")
    run_id = (await redis_handle.epoch.read()).run_id
    await redis_handle.epoch.seal(run_id)
    again = await redis_handle.epoch.read()
    assert (again.epoch, again.run_id, again.instance) == (run_id, run_id, "sql-1")
    assert await ttls_s(redis_handle) == {keys.epoch(): -1, keys.instance(): -1}
