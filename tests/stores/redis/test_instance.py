"""The instance id mirror: written once, a matching id passes, a different one is refused."""

from __future__ import annotations

import pytest

from shepherd.errors import InstanceMismatch
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.instance import mirror_instance_id
from shepherd.stores.redis.keys import Keys
from tests.stores.redis.helpers import ttls_s


async def test_the_first_mirror_writes_the_id_without_a_ttl(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    await mirror_instance_id(redis_handle.client, keys, "aaaa")
    assert await ttls_s(redis_handle) == {keys.instance(): -1}
    assert await redis_handle.client.get(keys.instance()) == "aaaa"


async def test_mirroring_the_same_id_again_passes(redis_handle: RedisHandle, keys: Keys) -> None:
    await mirror_instance_id(redis_handle.client, keys, "aaaa")
    await mirror_instance_id(redis_handle.client, keys, "aaaa")
    assert await ttls_s(redis_handle) == {keys.instance(): -1}


async def test_a_different_id_is_refused_naming_both_and_changes_nothing(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    await mirror_instance_id(redis_handle.client, keys, "aaaa")
    with pytest.raises(InstanceMismatch, match=r"'aaaa'.*'bbbb'"):
        await mirror_instance_id(redis_handle.client, keys, "bbbb")
    assert await redis_handle.client.get(keys.instance()) == "aaaa"
