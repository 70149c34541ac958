"""A loopback TCP proxy in front of PostgreSQL that a test can take down and bring back.

Taking the database away by stopping PostgreSQL or revoking a role would touch the shared server; a proxy
only touches the connections that go through it. The listener stays bound for the proxy's whole life (an
outage closes every forwarded connection and then accepts and closes new ones at once, as a server that
is restarting does), so bringing it back never races another process for the port. One thread owns every
socket, and `close` closes them all.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from types import TracebackType

from sqlalchemy.engine import make_url


class PostgresProxy:
    def __init__(self, target_url: str) -> None:
        target = make_url(target_url)
        self._target_url = target
        self._target = (target.host or "127.0.0.1", target.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._up = True
        self._lock = threading.Lock()
        self._drop_all = threading.Event()
        self._dropped = threading.Event()
        self._stop = threading.Event()
        self.refused = 0  # connections accepted and closed while down
        self._thread = threading.Thread(target=self._loop, name="pg-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The target's URL with the proxy as its host and port."""
        port = self._listener.getsockname()[1]
        return self._target_url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    def down(self) -> None:
        """Cut every open connection and refuse new ones until `up`; returns once the cut is done."""
        with self._lock:
            self._up = False
        self._dropped.clear()
        self._drop_all.set()
        if not self._dropped.wait(5):
            raise RuntimeError("the proxy thread did not cut its connections within 5 s")

    def up(self) -> None:
        with self._lock:
            self._up = True

    def up_after(self, seconds: float, *, refused_at_least: int = 1, give_up_after: float = 60.0) -> None:
        """Come back up once `seconds` have passed AND `refused_at_least` connections were refused (or after
        `give_up_after` seconds in any case). A fixed-length outage can pass unnoticed when the machine is
        busy enough that no client tries to connect during it; this one is always felt."""
        started = time.monotonic()
        while time.monotonic() - started < give_up_after:
            if time.monotonic() - started >= seconds and self.refused >= refused_at_least:
                break
            time.sleep(0.05)
        self.up()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in list(self._peers):
            sock.close()
        self._peers.clear()
        self._selector.close()
        self._listener.close()

    def __enter__(self) -> PostgresProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._drop_all.is_set():
                for sock in list(self._peers):
                    self._close(sock)
                self._drop_all.clear()
                self._dropped.set()
            for key, _ in self._selector.select(timeout=0.05):
                if key.fileobj is self._listener:
                    self._accept()
                elif isinstance(key.fileobj, socket.socket) and key.fileobj in self._peers:
                    self._forward(key.fileobj)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            up = self._up
        if not up:
            self.refused += 1
            client.close()
            return
        try:
            server = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.setblocking(True)
            sock.settimeout(5)
        self._peers[client], self._peers[server] = server, client
        self._selector.register(client, selectors.EVENT_READ)
        self._selector.register(server, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            self._peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(s)
            s.close()
