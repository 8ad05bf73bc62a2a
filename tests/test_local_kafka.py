"""The local launcher's ports: the controller takes the broker's next port unless something
listens there (a port found free for the broker says nothing of its neighbour)."""

from __future__ import annotations

import socket
from pathlib import Path

from deploy.local_kafka import LocalKafka


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
