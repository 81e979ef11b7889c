"""A control plane claims its data dir (a held flock naming its pid) and its port before it starts
anything; a second claim fails with one line that says which and by whom."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from shepherd.app.claim import bind_listener, claimed, data_dir_claimed
from shepherd.errors import ConfigError


def test_a_second_claim_of_a_data_dir_names_it_and_the_pid_holding_it(tmp_path: Path) -> None:
    with (data_dir_claimed(tmp_path / "data"), pytest.raises(ConfigError) as refused,
          data_dir_claimed(tmp_path / "data")):
        pass
    message = refused.value.message
    assert str((tmp_path / "data").resolve()) in message
    assert f"pid {os.getpid()}" in message


def test_a_released_data_dir_can_be_claimed_again(tmp_path: Path) -> None:
    with data_dir_claimed(tmp_path):
        pass
    with data_dir_claimed(tmp_path):
        assert (tmp_path / "control-plane.lock").read_text().strip() == str(os.getpid())


def test_a_busy_port_is_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            bind_listener("127.0.0.1", port)
    assert f"port {port} on 127.0.0.1 is already in use" in refused.value.message


def test_a_claim_holds_a_listening_socket_nobody_else_can_bind(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with claimed(tmp_path, "127.0.0.1", port) as listener:
        assert listener.getsockname()[1] == port
        with pytest.raises(ConfigError):
            bind_listener("127.0.0.1", port)
    bind_listener("127.0.0.1", port).close()  # released on exit
