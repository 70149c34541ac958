"""A local stand-in for the AWS Parameters and Secrets Lambda Extension's HTTP endpoint, for the tests and
bench/secret_read.py (a repository tool: cli/ ships in no asset).

As documented (https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets_lambda.html):
`GET /secretsmanager/get?secretId=ID` on localhost, refused unless the `X-Aws-Parameters-Secrets-Token`
header carries the function's AWS_SESSION_TOKEN, answered with GetSecretValue's JSON, which it caches for
SECRETS_MANAGER_TTL (300 s by default): a rotated secret is served stale until then. It calls Secrets
Manager (moto, in these tests) with its own client, as the extension does with the function's role.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3


@dataclass
class FakeExtension:
    port: int
    token: str
    ttl_seconds: float = 300.0
    requests: list[str] = field(default_factory=list)  # the secretId of every authorised request
    client: Any = None  # a Secrets Manager client made once, as the extension's own; None: one per miss
    _cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def forget(self) -> None:
        """An empty cache, as a new container's extension starts with."""
        self._cache.clear()

    def answer(self, secret_id: str, region: str) -> tuple[int, bytes]:
        cached = self._cache.get(secret_id)
        if cached is None or time.monotonic() - cached[0] > self.ttl_seconds:
            client = self.client or boto3.client("secretsmanager", region_name=region)
            try:
                response = client.get_secret_value(SecretId=secret_id)
            except client.exceptions.ClientError as err:
                error = err.response["Error"]
                return 400, f"{error['Code']}: {error.get('Message', '')}".encode()
            response.pop("ResponseMetadata", None)
            response["CreatedDate"] = str(response.get("CreatedDate", ""))
            cached = (time.monotonic(), response)
            self._cache[secret_id] = cached
        return 200, json.dumps(cached[1]).encode()


@contextmanager
def fake_extension(token: str, *, region: str = "us-east-1", client: Any = None) -> Iterator[FakeExtension]:
    holder: dict[str, FakeExtension] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake = holder["fake"]
            parts = urlsplit(self.path)
            secret_id = parse_qs(parts.query).get("secretId", [""])[0]
            if self.headers.get("X-Aws-Parameters-Secrets-Token") != fake.token:
                status, body = 401, b"missing or wrong X-Aws-Parameters-Secrets-Token"
            elif parts.path != "/secretsmanager/get" or not secret_id:
                status, body = 400, b"secretId is required"
            else:
                fake.requests.append(secret_id)
                status, body = fake.answer(secret_id, region)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["fake"] = FakeExtension(port=server.server_address[1], token=token, client=client)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["fake"]
    finally:
        server.shutdown()
        server.server_close()
