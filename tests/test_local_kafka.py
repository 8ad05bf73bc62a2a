"""The local launcher's ports: the controller takes the broker's next port unless it cannot be
bound (a port found free for the broker says nothing of its neighbour), and a port taken between
that choice and the broker's bind is chosen again (CI met one, held by an outgoing connection)."""

from __future__ import annotations

import socket
from pathlib import Path

from deploy.local_kafka import LocalKafka, free_port


def _listening() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


def test_the_controller_port_is_the_next_one_unless_something_listens_there(tmp_path: Path) -> None:
    with _listening() as listener:
        taken = listener.getsockname()[1]
        moved = LocalKafka(data_dir=tmp_path, port=taken - 1).controller_port
        assert moved is not None and moved != taken
    # The same port once nobody listens on it: the conventional neighbour.
    assert LocalKafka(data_dir=tmp_path, port=taken - 1).controller_port == taken


def test_a_port_held_without_listening_moves_the_controller_too(tmp_path: Path) -> None:
    # An outgoing connection's local port: nothing accepts there, yet a listener cannot bind it.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        moved = LocalKafka(data_dir=tmp_path, port=taken - 1).controller_port
        assert moved is not None and moved != taken


def test_a_controller_port_taken_after_it_was_chosen_is_chosen_again(tmp_path: Path) -> None:
    kafka = LocalKafka(data_dir=tmp_path / "kafka", port=free_port())
    chosen = kafka.controller_port
    assert chosen is not None
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", chosen))  # bound, not listening: the launcher's own check passes
        try:
            assert kafka.up() == kafka.bootstrap
            assert kafka.controller_port != chosen
            # The first try did fail on that port.
            assert "Address already in use" in (kafka.data_dir / "server.log").read_text()
        finally:
            kafka.down()
