"""The job both example apps enqueue: a welcome e-mail for a new user (registered with the installed
`jobstack` package, as a web app does; the worker registers the same type and its handler on its side)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from jobstack import register_job_type  # type: ignore[import-not-found]


class WelcomeEmail(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)


JOB_TYPE = "welcome-email"
register_job_type(JOB_TYPE, WelcomeEmail)
