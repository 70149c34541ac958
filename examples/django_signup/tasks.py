"""The example's Django task: a welcome e-mail for a new user. It logs the address's domain and returns it;
it sends nothing (put your mailer here). Decorated with Django's own `@task`: the code is Django's, the engine
is jobstack's (settings.TASKS)."""

from __future__ import annotations

import logging

from django.tasks import TaskContext, task

log = logging.getLogger(__name__)


@task(takes_context=True)
def send_welcome_email(context: TaskContext, email: str) -> dict[str, object]:
    domain = email.rpartition("@")[2]  # not the whole address: logs may hold no personal data
    log.info("welcome e-mail (example task: sends nothing) to a user at %s, attempt %d", domain, context.attempt)
    return {"domain": domain, "attempt": context.attempt}
