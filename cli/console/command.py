"""`jobstack console`: start the console on this machine and print its URL (with its token)."""

from __future__ import annotations

import argparse
import errno
import sys

from cli.console.server import ConsoleServer
from cli.console.sources import Sources
from cli.errors import OK, USAGE, CliError
from cli.target import Target
from db.migrate import current, head


def cmd_console(args: argparse.Namespace, target: Target) -> int:
    if args.sqlite is not None:
        if not args.sqlite.exists():
            raise CliError(f"--sqlite {args.sqlite}: no such file (`make local` leaves .build/local.sqlite3)", USAGE)
        target.database_url_flag = f"sqlite:///{args.sqlite.resolve()}"
    server = start(target, host=args.host, port=args.port, read_only=args.read_only)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: bound to {args.host}: anyone who can reach it and has the token can act on these jobs, over "
            "plain HTTP. Prefer the default 127.0.0.1 and an SSH tunnel.",
            file=sys.stderr,
        )
    print(f"jobstack console{' (read-only)' if args.read_only else ''} for {server.label}: {server.url}", flush=True)
    print("Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return OK


class _Started(ConsoleServer):
    label: str


def start(target: Target, *, host: str = "127.0.0.1", port: int = 8787, read_only: bool = False,
          refresh_seconds: float = 5.0) -> _Started:  # fmt: skip
    """A console bound and ready (not yet serving), for a database at the schema's head: a console on an
    unmigrated or older schema would fail page by page, so it is refused here, in one line."""
    revision, latest = current(target.db), head()
    if revision != latest:
        env = f" --env {target.env}" if target.env else ""
        raise CliError(f"the database is at migration {revision or 'none'}, not {latest}: run `jobstack migrate{env}`")
    sources = Sources(target)
    sources.client("sqs")  # the clients now, on this thread: boto3 does not create them safely from several
    try:
        server = _Started(sources, host=host, port=port, read_only=read_only, refresh_seconds=refresh_seconds)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} is in use on {host}: pass --port N (0 picks a free one)", USAGE) from None
        raise CliError(f"cannot listen on {host}:{port}: {err.strerror}", USAGE) from None
    server.label = sources.label
    return server
