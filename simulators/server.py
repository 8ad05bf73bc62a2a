"""Simulators are served by the worker's own ASGI runner; re-exported here for their users."""

from worker.asgi_server import ThreadedServer, serve_app

__all__ = ["ThreadedServer", "serve_app"]
