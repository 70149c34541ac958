"""A PgBouncer of the benchmark's own, in transaction mode, on a free port, in front of one PostgreSQL.

Transaction mode is what Supabase's port 6543 and most managed poolers run: a server connection is lent
for one transaction only, so nothing may rely on session state (no server-side prepared statements).
The instance lives in a temporary directory and is stopped on exit; `make pgbouncer` installs Debian's
package. PgBouncer refuses to run as root, so as root it drops to the `postgres` user (`-u`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from cli.local_ports import free_port, wait_until_listening

INSTALL_HINT = "install Debian's pgbouncer package (make pgbouncer)"


def find_pgbouncer() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        raise SystemExit(f"bench: no pgbouncer on PATH or in /usr/sbin: {INSTALL_HINT}")
    return found


@contextmanager
def pgbouncer(database_url: str, *, pool_size: int) -> Iterator[str]:
    """Yield a URL that reaches `database_url`'s database through a transaction-mode PgBouncer whose pool
    holds at most `pool_size` server connections (more clients wait for one, as on a managed pooler)."""
    target = make_url(database_url)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="jobstack-pgbouncer-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        user = target.username or "postgres"
        (folder / "users.txt").write_text(f'"{user}" ""\n')
        (folder / "pgbouncer.ini").write_text(
            f"""[databases]
{target.database} = host={target.host or "127.0.0.1"} port={target.port or 5432} dbname={target.database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
"""
        )
        command = [find_pgbouncer(), str(folder / "pgbouncer.ini")]
        if os.geteuid() == 0:  # it writes its log and pid file as that user
            command[1:1] = ["-u", "postgres"]
            shutil.chown(folder, "postgres")
        # Its stderr goes to a file, never an undrained pipe: PgBouncer logs every connection there too, and
        # once a pipe's 64 KiB filled, its next log line blocked the whole pooler (bench.ceiling's second
        # round stalled, its clients waiting on a PgBouncer stuck in write(2)).
        with (folder / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            _wait_for(port, process, folder)
            yield target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for(port: int, process: subprocess.Popen[bytes], folder: Path) -> None:
    if wait_until_listening(port, seconds=10, alive=lambda: process.poll() is None):
        return
    if process.poll() is not None:
        log = (folder / "pgbouncer.log").read_text() if (folder / "pgbouncer.log").exists() else ""
        stderr = (folder / "stderr.log").read_text() if (folder / "stderr.log").exists() else ""
        raise SystemExit(f"bench: pgbouncer exited with {process.returncode}: {(stderr or log).strip()[-500:]}")
    raise SystemExit(f"bench: pgbouncer did not listen on 127.0.0.1:{port} within 10 s")
