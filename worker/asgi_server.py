"""Run an ASGI app (ops endpoint, simulators) on loopback, in an anyio task group or its own thread.

The thread form lets a test drive a worker subprocess (and block on it) while the
simulator keeps answering on its own event loop.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import AsyncIterator, Generator
from typing import Any

import anyio
import uvicorn

from worker.errors import EdusyncError


class PortInUseError(EdusyncError, OSError):
    """The address to serve on is taken (another worker, or a stale one, holds the port)."""


class BindError(EdusyncError, OSError):
    """The address to serve on cannot be bound (no such interface, no permission)."""


def bind_socket(host: str, port: int, what: str = "ops endpoint") -> socket.socket:
    """A listening TCP socket on ``host:port``, or one clear error line: uvicorn's own bind logs a
    plain-text line and exits the process, where the worker wants a JSON log and a typed error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"{what}: port {port} on {host} is already in use (another edusync worker?); "
                                 "free it or set ops.port") from exc
        raise BindError(f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off",
        access_log=False, timeout_keep_alive=30,
        log_config=None,  # uvicorn's loggers go through the root handler: JSON like every other line
    )


def _bound_url(server: uvicorn.Server, host: str) -> str:
    sock = server.servers[0].sockets[0]
    return f"http://{host}:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def serve_app(app: Any, host: str = "127.0.0.1", port: int = 0,
                    what: str = "ops endpoint") -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yields the base URL (port 0 picks a free port).
    Raises ``PortInUseError`` or ``BindError`` if the address cannot be bound."""
    sock = bind_socket(host, port, what)
    server = _QuietServer(_config(app, host, port))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        while not server.started:
            if server.should_exit:
                raise RuntimeError(f"simulator failed to bind {host}:{port}")
            await anyio.sleep(0.01)
        try:
            yield _bound_url(server, host)
        finally:
            server.should_exit = True


class ThreadedServer:
    """An ASGI app served on loopback from a background thread, for tests and benchmarks."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _QuietServer(_config(app, host, port))
        self._host = host
        self._thread = threading.Thread(target=self._server.run, name="simulator", daemon=True)
        self.url = ""

    def start(self) -> ThreadedServer:
        """Start serving and wait until the socket is bound."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("simulator thread exited before it started serving")
            threading.Event().wait(0.01)
        self.url = _bound_url(self._server, self._host)
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
