"""A PostgreSQL server of the test's own: password (SCRAM) authentication and TLS with a CA the test makes.

The machine's server trusts every local connection and has no TLS, so neither a wrong password nor a
certificate can be tested against it, and the tests must leave it as it is. This starts the same
PostgreSQL binaries from a temporary data directory on a free port (as the `postgres` user when the tests
run as root, since PostgreSQL refuses to run as root), and stops and deletes it afterwards.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql

from cli.local_ports import free_port

SUPERUSER, PASSWORD = "postgres", "first-Password-1"


@dataclass(frozen=True)
class Authority:
    """A certificate authority the test made: `pem` is what a client trusts."""

    pem: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass
class OwnServer:
    port: int
    ca: Authority
    data: Path
    password: str = PASSWORD

    def url(self, *, password: str | None = None, host: str = "localhost", **query: str) -> str:
        password = self.password if password is None else password
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://{SUPERUSER}:{password}@{host}:{self.port}/postgres" + (f"?{params}" if params else "")

    def set_password(self, password: str) -> None:
        """Rotate the superuser's password, as Secrets Manager's rotation would."""
        with psycopg.connect(self.url(password=self.password, sslmode="require"), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password)))
        self.password = password


def make_authority(directory: Path, name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = directory / f"{name}.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(pem, key, cert)


def _server_certificate(ca: Authority, directory: Path) -> tuple[Path, Path]:
    """A certificate for `localhost` and 127.0.0.1 only, signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: the TLS and rotation tests start their own server")
    return on_path


@contextmanager
def own_postgres() -> Iterator[OwnServer]:
    root = Path(tempfile.mkdtemp(prefix="jobstack-pg-", dir="/tmp"))
    run: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    try:
        root.chmod(0o755)
        ca = make_authority(root, "test-ca")
        cert, key = _server_certificate(ca, root)
        data = root / "data"
        (root / "pw").write_text(PASSWORD)
        if run:
            shutil.chown(root, "postgres")
            for path in (cert, key, root / "pw"):
                shutil.chown(path, "postgres")
        key.chmod(0o600)
        subprocess.run(
            [*run, _bin("initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(root / "pw"),
             "--auth", "scram-sha-256", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{data}'\n"
                f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\nfsync = off\n"
            )
        subprocess.run(
            [*run, _bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "30", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            yield OwnServer(port, ca, data)
        finally:
            subprocess.run([*run, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def migrated_own_postgres() -> Iterator[OwnServer]:
    """`own_postgres()` with the jobs schema migrated to head."""
    from db import create_db
    from db.migrate import upgrade

    with own_postgres() as pg:
        db = create_db(pg.url(sslmode="require"))
        upgrade(db)
        db.dispose()
        yield pg
