"""An emulation of Lambda's SQS event source mapping, for the whole pipeline on one machine.

It long-polls the queue, gathers batches (batch size, batching window), runs N invocations at once, calls
the real `worker.handler.handler` with real-shaped events and a Lambda-like context that counts down the
function timeout, and applies the partial batch response: records not reported as failed are deleted,
failed ones are left to reappear (after the visibility the worker set), and SQS's own redrive moves a
message to the DLQ after maxReceiveCount. An invocation that overruns its timeout counts as failed
entirely, as Lambda would have killed it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cli.local.sqs_event import queue_arn, to_record

log = logging.getLogger("jobstack.local")
#: With --until-empty, how often an idle runner says what it still waits for.
WAITING_NOTE_SECONDS = 15.0
Handler = Callable[[dict[str, Any], Any], dict[str, list[dict[str, str]]]]


@dataclass(frozen=True)
class RunnerSettings:
    batch_size: int = 10
    batching_window_seconds: float = 0.0
    concurrency: int = 4
    function_timeout_seconds: float = 60.0
    wait_seconds: int = 1  # long-poll wait per receive; short locally so Ctrl-C and --until-empty are prompt
    until_empty: bool = False


@dataclass
class RunStats:
    invocations: int = 0
    records: int = 0
    deleted: int = 0
    returned: int = 0
    timed_out: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, records: int, deleted: int, timed_out: bool) -> None:
        with self._lock:
            self.invocations += 1
            self.records += records
            self.deleted += deleted
            self.returned += records - deleted
            self.timed_out += int(timed_out)


class LambdaContext:
    def __init__(self, timeout_seconds: float, request_id: str) -> None:
        self.deadline = time.monotonic() + timeout_seconds
        self.aws_request_id = request_id
        self.function_name = "jobs-local"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)


class LocalEventSource:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        settings: RunnerSettings,
        *,
        on_thread_exit: Callable[[], None] | None = None,
        on_tick: Callable[[RunStats], None] | None = None,
    ) -> None:
        self.sqs, self.queue_url, self.handler, self.settings = sqs, queue_url, handler, settings
        self.on_thread_exit = on_thread_exit
        self.on_tick = on_tick  # about once a second while running (a live summary)
        self.arn = queue_arn(sqs, queue_url)
        self.stats = RunStats()
        self.stop = threading.Event()
        self._idle = [False] * settings.concurrency
        self._idle_lock = threading.Lock()
        self._last_waiting_note = time.monotonic()  # the first note after WAITING_NOTE_SECONDS of waiting

    def run(self) -> RunStats:
        """Run until `stop` is set (Ctrl-C) or, with until_empty, the queue holds nothing at all."""
        threads = [
            threading.Thread(target=self._slot, args=(i,), name=f"invocation-{i}", daemon=True)
            for i in range(self.settings.concurrency)
        ]
        for t in threads:
            t.start()
        try:
            last_tick = time.monotonic()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.2)
                if self.on_tick is not None and time.monotonic() - last_tick >= 1.0:
                    last_tick = time.monotonic()
                    self.on_tick(self.stats)
        except KeyboardInterrupt:
            log.warning("stopping: finishing the batches in flight")
            self.stop.set()
            for t in threads:
                t.join()
        return self.stats

    def _slot(self, index: int) -> None:
        try:
            while not self.stop.is_set():
                try:
                    self._poll_once(index)
                except Exception:
                    # A failed SQS call must not end this slot: a dead slot would never report idle, and
                    # --until-empty would wait forever. Lambda's poller likewise just polls again.
                    log.exception("polling the queue failed; trying again in 1 s")
                    self.stop.wait(1)
        finally:
            self._set_idle(index, True)
            if self.on_thread_exit is not None:
                self.on_thread_exit()

    def _poll_once(self, index: int) -> None:
        messages = self._collect()
        if messages:
            self._set_idle(index, False)
            self._invoke(messages)
        elif self.settings.until_empty:
            self._set_idle(index, True)
            if self._all_idle() and self._drained():
                self.stop.set()

    def _collect(self) -> list[dict[str, Any]]:
        """One batch: up to batch_size messages, waiting at most the batching window once one arrived."""
        batch: list[dict[str, Any]] = []
        window_ends: float | None = None
        while len(batch) < self.settings.batch_size and not self.stop.is_set():
            wait = self.settings.wait_seconds if not batch else 0
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.settings.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch.extend(got)
            if not batch:
                return batch
            window_ends = window_ends or time.monotonic() + self.settings.batching_window_seconds
            if time.monotonic() >= window_ends or (not got and self.settings.batching_window_seconds == 0):
                break
            if not got:
                time.sleep(min(0.05, max(window_ends - time.monotonic(), 0)))
        return batch

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [to_record(m, self.arn) for m in messages]}
        context = LambdaContext(self.settings.function_timeout_seconds, f"local-{time.monotonic_ns()}")
        started = time.monotonic()
        try:
            response = self.handler(event, context)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("invocation failed: every record of the batch returns to the queue")
            failed = {m["MessageId"] for m in messages}
        timed_out = time.monotonic() - started > self.settings.function_timeout_seconds
        if timed_out:
            log.error(
                "invocation exceeded the %.0f s timeout: its batch returns", self.settings.function_timeout_seconds
            )
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self.stats.add(len(messages), len(done), timed_out)

    def _set_idle(self, index: int, idle: bool) -> None:
        with self._idle_lock:
            self._idle[index] = idle

    def _all_idle(self) -> bool:
        with self._idle_lock:
            return all(self._idle)

    def _drained(self) -> bool:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        waiting = {name: int(value) for name, value in attrs.items()}
        if sum(waiting.values()) == 0:
            return True
        now = time.monotonic()
        if now - self._last_waiting_note >= WAITING_NOTE_SECONDS:  # a delayed retry can take minutes: say so
            self._last_waiting_note = now
            print(
                f"waiting for the queue to empty: {waiting.get('ApproximateNumberOfMessagesDelayed', 0)} delayed "
                "(retries waiting out their backoff, jobs due later), "
                f"{waiting.get('ApproximateNumberOfMessagesNotVisible', 0)} in flight, "
                f"{waiting.get('ApproximateNumberOfMessages', 0)} visible",
                file=sys.stderr,
                flush=True,
            )
        return False
