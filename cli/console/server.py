"""Binding and serving the console: a threaded WSGI server (werkzeug's, which Flask is built on) on one
address, quiet about requests, because a request line would print the token a first visit carries."""

from __future__ import annotations

import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from cli.console.app import create_app
from cli.console.guard import Guard
from cli.console.sources import Sources


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Not logged: the first request's URL holds the token."""


def _unset_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


class ConsoleServer:
    """The console on `host:port` (0: a free port), served from a thread by `start` or in the foreground by
    `serve_forever`."""

    def __init__(
        self, sources: Sources, *, host: str = "127.0.0.1", port: int = 8787, read_only: bool = False,
        refresh_seconds: float = 5.0,
    ) -> None:  # fmt: skip
        # Bound here, so a port in use is an OSError for the caller to word (werkzeug's own bind prints its
        # message and exits the process).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family) as listening:
            self._server: BaseWSGIServer = make_server(
                host, port, _unset_app, threaded=True, request_handler=_QuietHandler, fd=listening.fileno()
            )
        self.sources = sources
        self.guard = Guard(host, self._server.port)
        self._server.app = create_app(sources, self.guard, read_only=read_only, refresh_seconds=refresh_seconds)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.guard.url

    @property
    def base_url(self) -> str:
        return self.url.split("/?", 1)[0]

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(target=self.serve_forever, name="jobs-console", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
