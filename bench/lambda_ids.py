"""An invocation named as Lambda names it, for the benchmarks' claims: every claim in production writes a
request id (a UUID, 36 characters) and an X-Ray trace id (35) onto the row, so a benchmark that claims with
no invocation (NULLs) would measure less than the worker does."""

from __future__ import annotations

import time
import uuid

from db.claiming import Invocation


def lambda_invocation() -> Invocation:
    return Invocation(str(uuid.uuid4()), f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")
