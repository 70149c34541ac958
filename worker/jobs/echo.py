"""`test-echo`: the smoke-test job. Publish `{"fail": "reason"}` to exercise retries and the DLQ on a
deployed stack."""

from __future__ import annotations

from worker.registry import JobContext, job


class EchoFailure(RuntimeError):
    """Raised on request, so operators can watch a failure travel through retries to the DLQ."""


@job("test-echo")
def echo(ctx: JobContext) -> None:
    # Payload contents only at DEBUG: real payloads may hold personal data.
    ctx.log.info("test-echo received", extra={"payload_keys": sorted(ctx.payload)[:20]})
    ctx.log.debug("test-echo payload", extra={"payload": ctx.payload})
    if "fail" in ctx.payload:
        raise EchoFailure(str(ctx.payload["fail"])[:500])
