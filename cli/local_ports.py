"""Loopback ports for the servers this repository starts on one machine (moto, PgBouncer, PostgreSQL):
one free port, and waiting until a server listens on it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A port nothing listens on now (the OS's choice), for a server about to be started on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(port: int, *, seconds: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """True once something accepts connections on 127.0.0.1:`port`; False after `seconds`, or as soon as
    `alive()` says the server's process has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
