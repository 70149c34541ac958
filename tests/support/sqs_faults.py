"""Fault injection for SQS: a real (moto) client wrapped so chosen calls or entries fail.

Only AWS is faked here; the database is always real.
"""

from __future__ import annotations

from typing import Any


class FlakySqs:
    """Delegates to a real client; `fail_sends` makes SendMessage raise, `reject_every` fails every Nth
    batch entry the way SQS reports partial failures (in `Failed`, not as an exception)."""

    def __init__(self, client: Any, *, fail_sends: bool = False, reject_every: int = 0) -> None:
        self._client = client
        self.fail_sends = fail_sends
        self.reject_every = reject_every
        self._seen = 0

    def send_message(self, **kwargs: Any) -> Any:
        if self.fail_sends:
            raise ConnectionError("Could not connect to the endpoint URL: https://sqs.us-east-1.amazonaws.com/")
        return self._client.send_message(**kwargs)

    def send_message_batch(self, **kwargs: Any) -> Any:
        if self.fail_sends:
            raise ConnectionError("Could not connect to the endpoint URL: https://sqs.us-east-1.amazonaws.com/")
        keep, rejected = [], []
        for entry in kwargs["Entries"]:
            self._seen += 1
            if self.reject_every and self._seen % self.reject_every == 0:
                rejected.append(
                    {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                )
            else:
                keep.append(entry)
        response = self._client.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=keep) if keep else {}
        return {
            "Successful": response.get("Successful", []),
            "Failed": [*response.get("Failed", []), *rejected],
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
