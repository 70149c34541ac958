"""The job both example apps enqueue: `welcome-email`, declared in db/job_types.py (the package the web app
installs as `jobstack` carries it, and the worker, whose handler is worker/jobs/welcome.py)."""

from __future__ import annotations

JOB_TYPE = "welcome-email"
