"""The local event source itself, against moto SQS: it must keep polling through SQS errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from cli.local.runner import LocalEventSource, RunnerSettings

pytestmark = pytest.mark.integration


class FailingReceives:
    """Delegates to a real client; the first `failures` ReceiveMessage calls raise."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client = client
        self.failures = failures

    def receive_message(self, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Could not connect to the endpoint URL")
        return self._client.receive_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_failed_receive_does_not_stop_a_slot(sqs: Any, caplog: pytest.LogCaptureFixture) -> None:
    url = sqs.create_queue(QueueName="runner")["QueueUrl"]
    for n in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    seen: list[str] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, list[dict[str, str]]]:
        seen.extend(r["body"] for r in event["Records"])
        return {"batchItemFailures": []}

    source = LocalEventSource(
        FailingReceives(sqs, failures=3), url, handler, RunnerSettings(concurrency=2, until_empty=True)
    )
    with caplog.at_level(logging.ERROR, logger="jobstack.local"):
        stats = source.run()
    assert sorted(seen, key=int) == [str(n) for n in range(12)]
    assert stats.deleted == 12
    assert sum("polling the queue failed" in r.message for r in caplog.records) == 3


def test_until_empty_says_what_it_still_waits_for(
    sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reported: `--until-empty` waited minutes for a delayed retry and printed nothing meanwhile."""
    import cli.local.runner

    url = sqs.create_queue(QueueName="waiting")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)
    monkeypatch.setattr(cli.local.runner, "WAITING_NOTE_SECONDS", 0.0)
    source = LocalEventSource(sqs, url, lambda _e, _c: {}, RunnerSettings(concurrency=1, until_empty=True))
    assert source._drained() is False
    [note] = capsys.readouterr().err.strip().splitlines()
    assert note.startswith("waiting for the queue to empty: 1 delayed (retries waiting out their backoff")
