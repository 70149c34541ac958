"""Who the operator is, and the one call every action of the CLI and the console makes once it has run
(db/audit.py holds the trail).

Who: the AWS identity of the session the command acts with (STS GetCallerIdentity, its ARN), when there is
one (it needs no permission: "No permissions are required to perform this operation", AWS STS API Reference,
GetCallerIdentity, so an operator's narrow role still names itself); otherwise the OS user (`os:NAME`). Asked
once per process, with a short timeout: an operator offline, or with no AWS credentials at all (a local run),
is still recorded, by name. A trail that cannot be written (a
database not yet migrated to it) does not undo the action that ran: the operator is told in one line.
"""

from __future__ import annotations

import getpass
import sys
from functools import cache
from typing import TYPE_CHECKING

from db import audit
from db.redaction import redact

if TYPE_CHECKING:
    from cli.target import Target


def operator(target: Target) -> str:
    return _identity(target.endpoint_url, target.region_name)


@cache
def _identity(endpoint_url: str | None, region: str) -> str:
    try:
        import boto3
        from botocore.config import Config

        session = boto3.Session()
        if session.get_credentials() is None:
            return _os_user()
        config = Config(connect_timeout=2, read_timeout=2, retries={"total_max_attempts": 1})
        sts = session.client("sts", endpoint_url=endpoint_url, region_name=region, config=config)
        return str(sts.get_caller_identity()["Arn"])
    except Exception:  # no network, an expired token: the OS user still names who acted
        return _os_user()


def _os_user() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # a container user with no passwd entry
        return "os:unknown"


def record(target: Target, done: audit.Action) -> None:
    """Add the action that just ran to the trail."""
    try:
        audit.record(target.db, operator(target), done)
    except Exception as err:  # the action ran; its record did not: say so, do not fail the action
        print(
            f"warning: {done.action} done, but not recorded in the audit trail "
            f"({redact(str(err)).splitlines()[0][:200]}): run jobstack migrate",
            file=sys.stderr,
        )
