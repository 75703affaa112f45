"""`--ray-address`: an address where nothing listens is refused at once, in one line (Ray
2.60 itself waits for minutes), and a failed join names RAY_AUTH_MODE=token. The join of a
real `ray start` cluster is tested in tests/e2e/test_ray_cluster.py."""

from __future__ import annotations

import socket

import pytest

from reuse.cache.engines import probe_ray_address, ray_connection_error
from reuse.core.errors import ReuseError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_nothing_listening_is_refused_with_the_command_that_starts_a_cluster(scheme):
    port = _closed_port()
    with pytest.raises(ReuseError) as caught:
        probe_ray_address(f"{scheme}127.0.0.1:{port}", timeout=2)
    text = str(caught.value)
    assert f"nothing answers at the Ray address {scheme}127.0.0.1:{port}" in text
    assert f"ray start --head --port={port}" in text and "\n" not in text


def test_a_listening_address_and_auto_pass():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe_ray_address(f"127.0.0.1:{server.getsockname()[1]}", timeout=2)
    for address in (None, "auto", "head-without-port"):
        probe_ray_address(address)  # nothing to probe: Ray decides


def test_a_failed_join_names_token_authentication(monkeypatch):
    err = ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    text = str(ray_connection_error("10.0.0.5:6379", err))
    assert text.startswith("cannot join the Ray cluster at 10.0.0.5:6379 —")
    assert "RAY_AUTH_MODE=token" in text and "ray status --address 10.0.0.5:6379" in text
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    text = str(ray_connection_error("10.0.0.5:6379", err))
    assert "RAY_AUTH_MODE=token" not in text and "RAY_AUTH_TOKEN" in text
