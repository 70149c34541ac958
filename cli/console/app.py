"""The console's app: the guard every request passes (its own Host, the token, then origin and CSRF for a
change), the security headers, one-line error pages, and the two blueprints: what it shows
(cli/console/pages.py) and what it changes (cli/console/acting.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, abort, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from cli.console.acting import acting
from cli.console.context import EXTENSION, BadInput, Console
from cli.console.enqueuing import enqueuing
from cli.console.guard import CSRF_FIELD, SECURITY_HEADERS, TOKEN_PARAMETER, Guard
from cli.console.pages import pages
from cli.console.sources import Sources, ago
from cli.errors import CliError
from db import DatabaseUnavailable, redact

HERE = Path(__file__).resolve().parent


def create_app(sources: Sources, guard: Guard, *, read_only: bool = False, refresh_seconds: float = 5.0) -> Flask:
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    app.extensions[EXTENSION] = Console(sources, guard, read_only, refresh_seconds)

    @app.context_processor
    def _everywhere() -> dict[str, Any]:
        return {
            "target_label": sources.label,
            "read_only": read_only,
            "csrf": guard.csrf,
            "csrf_field": CSRF_FIELD,
            "refresh_ms": int(refresh_seconds * 1000),
            "ago": ago,
            "now": datetime.now(UTC),
        }

    app.jinja_env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else ("-" if n is None else n)
    app.jinja_env.filters["when"] = lambda t: f"{t:%Y-%m-%d %H:%M:%S}" if t else "-"
    app.jinja_env.filters["seconds"] = _seconds
    app.jinja_env.filters["redact"] = redact  # errors and reasons may quote a URL with its password

    @app.before_request
    def _guard() -> Response | None:
        if not guard.host_ok(request.host):
            abort(403, "this console answers to its own address only (the Host header named another)")
        if request.method == "GET" and request.path.startswith("/static/"):
            return None  # its own stylesheet and script, no data: a refusal page is styled too
        given = request.args.get(TOKEN_PARAMETER)
        if given is not None:
            if not guard.token_ok(given):
                abort(403, "wrong token: open the URL `jobstack console` printed")
            if request.method == "GET":  # the cookie from now on; the token leaves the address bar
                query = {k: v for k, v in request.args.items(multi=True) if k != TOKEN_PARAMETER}
                response = redirect(request.path + (f"?{urlencode(query)}" if query else ""), code=303)
                session = guard.open_session()  # the cookie holds a session id, never the token
                response.set_cookie(guard.cookie, session, httponly=True, samesite="Strict", path="/")
                return response  # type: ignore[return-value]
        elif not guard.session_ok(request.cookies.get(guard.cookie)):
            abort(403, "no token: open the URL `jobstack console` printed (it ends in ?token=...)")
        if request.method == "POST":
            if read_only:
                abort(403, "this console is read-only (started with --read-only)")
            if not guard.origin_ok(request.headers.get("Origin"), request.headers.get("Referer"), request.host):
                abort(403, "a change must come from this console's own page (its browser sent no Origin or Referer)")
            if not guard.csrf_ok(request.form.get(CSRF_FIELD)):
                abort(403, "this form is stale or not the console's own: reload the page and try again")
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[str, int]:
        # A refusal says nothing about the target (not even its name) to whoever was refused.
        template = "denied.html" if err.code == 403 else "error.html"
        return render_template(template, code=err.code, message=err.description), err.code or 500

    @app.errorhandler(BadInput)
    def _bad_input(err: BadInput) -> tuple[str, int]:
        return render_template("error.html", code=400, message=redact(str(err))), 400

    @app.errorhandler(CliError)
    def _refused(err: CliError) -> tuple[str, int]:
        """An action the CLI would refuse in one line (a retry, or a cancel that must send, with no queue)."""
        return render_template("error.html", code=400, message=redact(str(err))), 400

    @app.errorhandler(DatabaseUnavailable)
    def _database_down(err: DatabaseUnavailable) -> tuple[str, int]:
        return render_template("error.html", code=503, message=redact(str(err))), 503

    app.register_blueprint(pages)
    app.register_blueprint(acting)
    app.register_blueprint(enqueuing)
    return app


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
