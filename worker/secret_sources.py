"""Where the secret's text comes from: the Parameters and Secrets Lambda Extension, or Secrets Manager itself.

The extension (an AWS layer the stack adds when `secrets_extension` is on) answers on localhost from its
own cache and makes the GetSecretValue call with the function's role, so a cold worker reads its secret
without importing boto3 at all (about 0.2-0.5 s of INIT on a Lambda container, docs/benchmarks.md): on
the happy path nothing else needs the SDK. https://docs.aws.amazon.com/lambda/latest/dg/with-secrets-manager.html

The extension's cache is why a read that must be fresh (the database refused the credentials: a rotation
happened) goes to Secrets Manager directly. If the extension does not answer at all, the SDK is used
and the fallback is logged once; an error the extension reports (access denied, no such secret) is the
same error the SDK would meet, so it is raised, not retried.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import quote

from db.exceptions import ConfigError
from worker.observability import LOGGER_NAME

#: Set by the stack (aws-cdk-lib's ParamsAndSecretsLayerVersion) exactly when the layer is attached.
PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name, not a secret
EXTENSION_TIMEOUT_SECONDS = 5.0
log = logging.getLogger(LOGGER_NAME)


class ExtensionUnreachable(Exception):
    """Nothing answered on the extension's port (no layer, or it has not started)."""


def secret_string(arn: str, *, fresh: bool = False, client: Any | None = None) -> str:
    """The secret's SecretString. `fresh` skips the extension's cache; `client` is a Secrets Manager client
    to use instead of the extension or a new boto3 client."""
    port = os.environ.get(PORT_VARIABLE)
    if client is None and port and not fresh:
        try:
            return from_extension(arn, port=int(port), token=os.environ.get("AWS_SESSION_TOKEN", ""))
        except ExtensionUnreachable as err:
            log.warning("secrets extension did not answer; reading the secret with the SDK", extra={"reason": str(err)})
    return from_sdk(arn, client)


def from_extension(arn: str, *, port: int, token: str) -> str:
    import urllib.error  # lazy: ~8 ms of http.client and email that a worker reading DATABASE_URL never needs
    import urllib.request

    request = urllib.request.Request(
        f"http://localhost:{port}/secretsmanager/get?secretId={quote(arn, safe='')}", headers={TOKEN_HEADER: token}
    )
    try:
        with urllib.request.urlopen(request, timeout=EXTENSION_TIMEOUT_SECONDS) as response:  # noqa: S310 - localhost
            document = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise ConfigError(
            f"cannot read database secret {arn}: the secrets extension answered HTTP {err.code} "
            f"{_first_line(err)} (check the ARN and the worker's IAM role)"
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise ExtensionUnreachable(f"localhost:{port}: {getattr(err, 'reason', err)}") from None
    except json.JSONDecodeError:
        raise ConfigError(f"cannot read database secret {arn}: the secrets extension answered non-JSON") from None
    return str(document.get("SecretString") or "")


def _first_line(err: Any) -> str:
    """The extension's error text (an AWS error code and message: never the secret's value), short."""
    try:
        text = err.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return text.splitlines()[0][:200] if text else ""


def from_sdk(arn: str, client: Any | None = None) -> str:
    if client is None:
        import boto3  # lazy: only deployed workers read secrets, and boto3 costs ~150 ms to import

        client = boto3.client("secretsmanager")
    try:
        response = client.get_secret_value(SecretId=arn)
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
        raise ConfigError(
            f"cannot read database secret {arn}: {code} (check the ARN and the worker's IAM role)"
        ) from None
    return str(response.get("SecretString") or "")
