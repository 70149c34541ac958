"""Who may ask the console anything, and what every answer carries.

The console shows payloads and can retry, cancel and redrive production jobs, so it is locked like
Jupyter's server: a random token in the URL it prints (then an HttpOnly, SameSite=Strict cookie, so the
token leaves the address bar), compared in constant time; a request without it gets 403. Every change is a
POST carrying a second token (CSRF) that only the console's own pages hold. The Host header must name this
server, which defeats DNS rebinding (a hostile page that makes its own name resolve to 127.0.0.1). Every
answer forbids inline script, framing, caching, and referrers to other sites (the token must not leak).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

COOKIE = "jobstack_console"
TOKEN_PARAMETER = "token"  # noqa: S105 - the query parameter's name, not a token
CSRF_FIELD = "csrf"

#: No inline script or style, nothing from another origin; SVG charts use classes from console.css.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Never to another site; same-origin keeps a POST's Origin header (no-referrer would make it "null").
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class Guard:
    host: str
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())

    def host_ok(self, host_header: str | None) -> bool:
        """The Host a browser sends for this server's own URL (or any, when bound to every address)."""
        if self.host in ("0.0.0.0", "::"):  # noqa: S104 - the operator asked for every address; said at start
            return True
        names = {self.host, "127.0.0.1", "localhost", "[::1]"}
        return host_header in {f"{name}:{self.port}" for name in names}

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        """A POST's Origin, when the browser sends one, must be this server's."""
        return origin is None or origin == f"http://{host_header}"

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{shown}:{self.port}/?{TOKEN_PARAMETER}={self.token}"
