"""The console under test: a Target as `jobstack console` builds one (flags, or a deployed stack's outputs), the
Flask app behind a test client that sends this server's Host, and a running server for the browser."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from cli.console.app import create_app
from cli.console.command import start
from cli.console.guard import Guard
from cli.console.server import ConsoleServer
from cli.console.sources import Sources
from cli.target import Target
from db import Routes
from stacks.pools import output_key

ROOT = Path(__file__).resolve().parents[2]
PORT = 8787
#: Where the browser tests save a screenshot of each page (kept after the run; .build/ is not committed).
SCREENSHOTS = ROOT / ".build" / "test-output" / "console"


def flag_target(database_url: str, queue_url: str | None = None, dlq_url: str | None = None) -> Target:
    """A target named by flags, as `jobstack console --database-url ... --queue-url ... --dlq-url ...`."""
    return Target(database_url_flag=database_url, queue_url_flag=queue_url, dlq_url_flag=dlq_url, environ={})


def deployed_target(
    database_url: str,
    pools: dict[str, tuple[str, str]],
    types: dict[str, str],
    priorities: dict[str, str] | None = None,
) -> Target:
    """A target as `--env dev` reads a deployed stack: its outputs (each pool's queue and DLQ, the Routes),
    given here instead of read from CloudFormation, which moto's cannot make with pools and a secret."""
    target = Target(env="dev", database_url_flag=database_url, environ={})
    outputs = {
        "Routes": Routes(
            queues={p: q for p, (q, _) in pools.items()},
            types=types,
            stack="JobsStack-dev",
            priorities=priorities or {},
        ).to_json()
    }
    for pool, (queue_url, dlq_url) in pools.items():
        outputs[output_key(pool, "QueueUrl")] = queue_url
        outputs[output_key(pool, "DeadLetterQueueUrl")] = dlq_url
    target.__dict__["outputs"] = outputs  # the cached_property's value, as describe_stacks would fill it
    return target


def visible(queue_client: Any, url: str) -> int:
    """A queue's visible messages, read without receiving any."""
    attributes = queue_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def client_for(target: Target, *, read_only: bool = False, log_in: bool = True) -> tuple[FlaskClient, Guard]:
    """The app behind a test client whose requests name this server (Host 127.0.0.1:PORT)."""
    guard = Guard("127.0.0.1", PORT)
    app = create_app(Sources(target), guard, read_only=read_only)
    app.config["SERVER_NAME"] = f"127.0.0.1:{PORT}"  # the test client's Host (it routes any Host all the same)
    client = app.test_client()
    # As a browser on the console's own page: its POSTs carry the page's Origin (a test that means another
    # origin, or none, says so in its request).
    client.environ_base["HTTP_ORIGIN"] = f"http://127.0.0.1:{PORT}"
    if log_in:
        response = client.get(f"/?token={guard.token}")
        assert response.status_code == 303, response.status_code
    return client, guard


@contextmanager
def running_console(
    target: Target, *, read_only: bool = False, refresh_seconds: float = 1.0
) -> Iterator[ConsoleServer]:
    server = start(target, port=0, read_only=read_only, refresh_seconds=refresh_seconds).start()
    try:
        yield server
    finally:
        server.stop()


def chromium_path() -> str:
    """Debian's chromium: `make browser` installs it (`make test` runs that first). Missing, it is a failure
    that says so, never a skip: these tests are the console's proof."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise AssertionError("no chromium on PATH: run `make browser` (Debian's chromium package)")
    return path


#: What Chromium needs here: root (no sandbox), no GPU, and no background connections to Google's hosts,
#: which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class PageFacts(HTMLParser):
    """What a page holds that the security model forbids: inline script, inline handlers and styles, and
    anything loaded from another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts = 0
        self.inline_handlers: list[str] = []
        self.inline_styles = 0
        self.foreign: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and not named.get("src"):
            self.inline_scripts += 1
        self.inline_handlers += [name for name, _ in attrs if name.startswith("on")]
        if "style" in named or tag == "style":
            self.inline_styles += 1
        for name in ("src", "href", "action"):
            value = named.get(name) or ""
            if re.match(r"^(https?:)?//", value) or value.startswith("javascript:"):
                self.foreign.append(value)


def page_facts(html: str) -> PageFacts:
    facts = PageFacts()
    facts.feed(html)
    return facts


def cells(html: str, attribute: str) -> dict[str, str]:
    """`<td data-ATTRIBUTE="name">text</td>` cells of a page: name -> the cell's text, tags removed."""
    found: dict[str, str] = {}
    pattern = rf'<td[^>]*{attribute}="([^"]+)"[^>]*>(.*?)</td>'
    for name, inner in re.findall(pattern, html, flags=re.S):
        found[name] = re.sub(r"<[^>]+>", "", inner).strip()
    return found


def number(text: str) -> int:
    return int(text.replace(",", "").replace("≈", "").strip() or 0)
