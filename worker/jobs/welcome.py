"""`welcome-email`: the example apps' job (examples/), so they run end to end with `jobstack local`. It logs the
address's domain and completes; it sends nothing. Put your mailer here, or delete this module and the type
in db/job_types.py."""

from __future__ import annotations

from worker.registry import JobContext, job


@job("welcome-email")
def welcome(ctx: JobContext) -> None:
    domain = str(ctx.payload["email"]).rpartition("@")[2]  # not the whole address: logs may hold no personal data
    ctx.log.info("welcome e-mail (example handler: sends nothing)", extra={"domain": domain})
