"""`jobstack local`: the whole system on one machine. See cli/local/runner.py for the event source emulation
and cli/local/embedded.py for the embedded SQS and database defaults."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import make_url

from cli import dlq as dead_letters
from cli.console.worker_presence import LocalWorker
from cli.errors import USAGE, CliError
from cli.local.embedded import create_queues, start_sqs
from cli.local.runner import LocalEventSource, RunnerSettings
from cli.local.summary import LiveSummary
from cli.output import table
from cli.target import Target, stack_pool
from db import JobRequest, JobstackError, Queue, create_db, get_job_type, list_jobs, publish_many, redact
from db.migrate import upgrade
from stacks.contract import WorkerQueues, worker_environment
from worker.contract import Env


def max_receive_count(sqs: Any, queue_url: str, default: int) -> int:
    """The queue's own redrive maxReceiveCount (the worker requeues at half of it); `default` if it has none."""
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    try:
        return int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])
    except (KeyError, ValueError, TypeError):
        return default


def own_jobs(pairs: list[list[str]] | None) -> list[JobRequest]:
    """`--publish TYPE PAYLOAD` pairs as validated requests, before anything starts: an unknown type or a
    payload its schema refuses is one line (the worker's job modules are imported, so their types count)."""
    import worker.jobs  # noqa: F401 - registers the handlers' modules, and any type they register
    from worker.registry import get_handler

    requests = []
    for job_type, text in pairs or []:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as err:
            raise CliError(f"--publish {job_type}: the payload is not valid JSON: {err.msg}", USAGE) from None
        try:
            get_job_type(job_type).validate(payload)
            get_handler(job_type)  # a type with no handler would only be dead-lettered
        except JobstackError as err:
            raise CliError(f"--publish {job_type}: {err}", USAGE) from None
        requests.append(JobRequest(job_type, payload))
    return requests


def share_line(target: Target, database_url: str, queue_url: str, dlq_url: str) -> str:
    """The `export` line a second shell (a web app, `jobstack publish`) needs for this run's database and queues;
    an emulator takes any credentials, but boto3 wants some (dummy ones, printed; never the caller's). A
    database URL with a password is left out (the line is printed): the other shell sets its own."""
    variables = {"QUEUE_URL": queue_url, "DLQ_URL": dlq_url}
    if make_url(database_url).password is None:
        variables = {"DATABASE_URL": database_url, **variables}
    if target.endpoint_url:
        variables |= {
            "AWS_ENDPOINT_URL": target.endpoint_url,
            "AWS_ACCESS_KEY_ID": "local",  # never the caller's own keys: this line is printed
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": target.region_name,
        }
    line = "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in variables.items())
    return line if "DATABASE_URL" in variables else f"{line}   # and your DATABASE_URL (it has a password)"


def run_local(args: argparse.Namespace, target: Target) -> int:
    import worker.handler
    from worker.config import load_config
    from worker.runtime import check_handlers

    mine = own_jobs(args.publish)
    pool = stack_pool(target.env or "dev", target.pool)  # its function settings (timeout, batch size, ...)
    settings = pool.settings
    embedded = None
    # Queues and database from wherever the other commands take them (flags, variables, --env's deployed
    # stack, through --endpoint-url); only what none of them names is embedded.
    if target.has_queue:
        sqs, queue_url, dlq_url = target.sqs, target.queue_url, target.dlq_url
    else:
        embedded = start_sqs()
        target.endpoint_url = embedded.endpoint_url
        sqs = target.client("sqs")
        queue_url, dlq_url = create_queues(sqs, pool)
    names_a_database = target.database_url_flag or target.environ.get("DATABASE_URL") or target.env
    database_url = target.database_url if names_a_database else f"sqlite:///{args.sqlite.resolve()}"
    timeout = args.timeout if args.timeout is not None else float(settings.timeout_seconds)
    if args.stale_after is not None and args.stale_after <= int(timeout):
        raise CliError(
            f"--stale-after ({args.stale_after}) must exceed the function timeout ({int(timeout)} s), or a live "
            "invocation's job would be taken from it: raise it or lower --timeout",
            USAGE,
        )
    # The deployed worker's environment (stacks/contract.py), for this database and these queues...
    environment = worker_environment(
        pool,
        WorkerQueues(queue_url, dlq_url),
        database_url=database_url,
        timeout_seconds=max(int(timeout), 1),
        stale_after_seconds=args.stale_after,
        max_receive_count=max_receive_count(sqs, queue_url, settings.max_receive_count),
    )
    # ... tuned for one machine: quieter, and retries come back in seconds, not minutes, so a run drains.
    environment |= {
        Env.LOG_LEVEL: os.environ.get(Env.LOG_LEVEL, "WARNING"),
        Env.BACKOFF_BASE_SECONDS: os.environ.get(Env.BACKOFF_BASE_SECONDS, "1"),
        Env.BACKOFF_MAX_SECONDS: os.environ.get(Env.BACKOFF_MAX_SECONDS, "4"),
        Env.MIN_TIME_LEFT_SECONDS: str(max(1, min(10, int(timeout / 4)))),
    }
    # The worker's own start-up checks, before anything is published or invoked: a handler naming an
    # undefined rate limit (or too slow for the timeout) is one line here, not a traceback per invocation.
    try:
        check_handlers(load_config(environment))
    except Exception:
        if embedded is not None:
            embedded.stop()
        raise
    db = create_db(database_url)  # the runner's own connection; each invocation slot has its own
    console: Any = None
    try:
        if database_url.startswith("sqlite"):
            upgrade(db)  # the embedded database migrates itself; a real one is migrated with `jobstack migrate`
        os.environ.update(environment)
        if target.endpoint_url:
            os.environ["AWS_ENDPOINT_URL"] = target.endpoint_url
        os.environ.setdefault("AWS_DEFAULT_REGION", target.region_name)  # the worker's clients, as the CLI's
        if args.demo:
            requests = [
                JobRequest(
                    "test-echo",
                    {"fail": "demo failure"} if n % 5 == 4 else {"n": n},
                    max_attempts=2,
                    ordering_key=f"demo-{n % 3}" if pool.fifo else None,  # a FIFO pool: three ordered streams
                    priority=pool.priority,  # a priority lane's jobs carry its priority, as a Router's would
                )
                for n in range(args.demo)
            ]
            publish_many(db, requests, queue=Queue(sqs, queue_url))
            print(f"published {args.demo} test-echo jobs ({args.demo // 5} set to fail)", file=sys.stderr)
        if mine:
            lane = [replace(request, priority=pool.priority) for request in mine]
            published = publish_many(db, lane, queue=Queue(sqs, queue_url))
            for job in published:
                print(f"published {job.type} job {job.id}", file=sys.stderr)
        if embedded is not None or not names_a_database:
            print(
                f"embedded: database {redact(database_url)}, queue {queue_url}, dead-letter queue {dlq_url}"
                + (" (SQS stops with this command)" if embedded is not None else ""),
                file=sys.stderr,
            )
            print(f"another shell reaches them with:\n  {share_line(target, database_url, queue_url, dlq_url)}",
                  file=sys.stderr)  # fmt: skip
        if args.console:
            console = _start_console(target, database_url, queue_url, dlq_url)
            console.sources.local_worker = LocalWorker(
                f"work them from another shell: {share_line(target, database_url, queue_url, dlq_url)}; "
                "then jobstack local --until-empty"
            )
        live = LiveSummary(db, sqs, dlq_url)
        runner = LocalEventSource(
            sqs,
            queue_url,
            worker.handler.handler,
            RunnerSettings(
                batch_size=args.batch_size or settings.batch_size,
                batching_window_seconds=args.batching_window
                if args.batching_window is not None
                else float(settings.max_batching_window_seconds),
                concurrency=args.concurrency,
                function_timeout_seconds=timeout,
                until_empty=args.until_empty or bool(args.demo) or bool(mine),
            ),
            on_thread_exit=worker.handler.reset_runtime,
            on_tick=live.tick,
        )
        print(
            f"running the worker{'' if pool.is_default else f' of pool {pool.name}'} on {queue_url} with "
            f"{args.concurrency} concurrent invocations"
            + (" until the queue is empty" if runner.settings.until_empty else " (Ctrl-C to stop)"),
            file=sys.stderr,
        )
        try:
            stats = runner.run()
        finally:
            if console is not None:
                console.sources.local_worker.stopped()
        if not args.json:
            live.close(stats)
        summary = {
            "invocations": stats.invocations,
            "records": stats.records,
            "deleted": stats.deleted,
            "returned": stats.returned,
            "timed_out": stats.timed_out,
        }
        if args.json:
            print(json.dumps(summary))
        else:
            print(", ".join(f"{k} {v}" for k, v in summary.items()))
            if args.demo or args.until_empty or mine:
                jobs = list_jobs(db, limit=max(args.demo, 50))
                print("\njobs:")
                table(
                    [(j.id, j.type, j.status, f"{j.attempts}/{j.max_attempts}", j.error) for j in jobs],
                    ["id", "type", "status", "attempts", "error"],
                )
                letters = dead_letters.receive(sqs, dlq_url, 100, hold_seconds=5)
                dead_letters.release(sqs, dlq_url, letters)
                print("\ndead-letter queue:")
                table(
                    [(m.job_id, m.kind, m.reason) for m in letters],
                    ["job id", "kind", "error"],
                )
        if console is not None and sys.stdin.isatty():
            _keep_serving(console)
        elif console is not None and database_url.startswith("sqlite"):
            path = database_url.removeprefix("sqlite:///")
            print(f"the console stops with this run; reopen it on these jobs: jobstack console --sqlite {path}",
                  file=sys.stderr)  # fmt: skip
        return 0
    finally:
        if console is not None:
            console.stop()
            console.sources.target.close()
        db.dispose()
        if embedded is not None:
            embedded.stop()


def _start_console(target: Target, database_url: str, queue_url: str, dlq_url: str) -> Any:
    """`jobstack console` on this run's database and queues, served from a thread while the worker runs."""
    from cli.console.command import start

    own = Target(
        env=target.env,
        database_url_flag=database_url,
        queue_url_flag=queue_url,
        dlq_url_flag=dlq_url,
        endpoint_url=target.endpoint_url,
        region=target.region,
        pool=target.pool,
    )
    server = start(own, port=0).start()
    print(f"jobstack console on this run: {server.url}", file=sys.stderr, flush=True)
    return server


def _keep_serving(console: Any) -> None:
    print(f"\nthe console stays up at {console.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
