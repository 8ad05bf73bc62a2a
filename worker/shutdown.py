"""Turn SIGTERM and SIGINT into a stop request that loops check between units of work."""

from __future__ import annotations

import signal

import anyio
import structlog

log = structlog.get_logger(__name__)


class StopToken:
    """Set once when the process should finish in-flight work and exit."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        """Request a stop."""
        self._event.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Wait until a stop is requested."""
        await self._event.wait()

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True if woken by a stop request."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        return self.stopping


async def stop_on_signals(stop: StopToken) -> None:
    """Set ``stop`` on the first SIGTERM or SIGINT; a second one exits immediately."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if stop.stopping:
                log.warning("second signal, exiting now", signal=signal.Signals(signum).name)
                raise SystemExit(130)
            log.info("stop requested: finishing in-flight work", signal=signal.Signals(signum).name)
            stop.set()
