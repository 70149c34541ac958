"""A loopback TCP proxy that adds a fixed delay each way, to price round trips as a real network would.

On loopback a round trip costs microseconds, so a design that makes nine of them per job looks as cheap as
one that makes two. Lambda to a pooler in the same region is about 0.5-1 ms per round trip; this proxy puts
that back so the per-job benchmark compares what users will pay. Each direction of each connection is one
thread that forwards a chunk after the delay: fine for PostgreSQL's request-then-reply traffic.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

from sqlalchemy.engine import make_url


class LatencyProxy:
    def __init__(self, target_url: str, *, one_way_ms: float) -> None:
        target = make_url(target_url)
        self._target_url = target
        self._target = (target.host or "127.0.0.1", target.port or 5432)
        self._delay = one_way_ms / 1000
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="latency-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        """The target's URL with the proxy as its host and port."""
        port = self._listener.getsockname()[1]
        return self._target_url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                time.sleep(self._delay)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
