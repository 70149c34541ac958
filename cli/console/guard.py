"""Who may ask the console anything, and what every answer carries.

The console shows payloads and can retry, cancel and redrive production jobs, so it is locked like
Jupyter's server: a random token in the URL it prints, compared in constant time; a request without it gets
403. The token is exchanged, once, for a session: an HttpOnly, SameSite=Strict cookie holding a random
session id (never the token), so the token leaves the address bar. Browsers send a cookie to every port of
a host, so the cookie is named for this console's port: a second console (prod read-only beside dev) does
not replace the first one's, and another local server the browser visits learns a session of this process
only, never the token. Every change is a POST carrying a second token (CSRF) that only the console's own
pages hold, and the browser's word that it comes from this console's own page: its Origin, or without one
a same-origin Referer (a POST with neither is refused). The Host header must name this server, which
defeats DNS rebinding (a hostile page that makes its own name resolve to 127.0.0.1). Every answer forbids
inline script, framing, caching, and referrers to other sites (the token must not leak). The static files
(the console's own stylesheet and script, no data) are served without a session, so a refusal page is
styled like the rest.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

COOKIE_PREFIX = "jobstack_console_"
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
    _sessions: set[str] = field(default_factory=set, repr=False)

    @property
    def cookie(self) -> str:
        """The session cookie's name: one per console port (cookies ignore ports)."""
        return f"{COOKIE_PREFIX}{self.port}"

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def open_session(self) -> str:
        """A new session id, for the browser that just showed the token."""
        session = secrets.token_urlsafe(32)
        self._sessions.add(session)
        return session

    def session_ok(self, given: str | None) -> bool:
        return given is not None and any(hmac.compare_digest(given.encode(), s.encode()) for s in self._sessions)

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())

    def host_ok(self, host_header: str | None) -> bool:
        """The Host a browser sends for this server's own URL (or any, when bound to every address)."""
        if self.host in ("0.0.0.0", "::"):  # noqa: S104 - the operator asked for every address; said at start
            return True
        names = {self.host, "127.0.0.1", "localhost", "[::1]"}
        return host_header in {f"{name}:{self.port}" for name in names}

    def origin_ok(self, origin: str | None, referer: str | None, host_header: str | None) -> bool:
        """A POST comes from this console's own page: its Origin is this server, or, from a browser that sent
        none, its Referer is one of this server's pages."""
        own = f"http://{host_header}"
        if origin is not None:
            return origin == own
        return referer is not None and (referer == own or referer.startswith(f"{own}/"))

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{shown}:{self.port}/?{TOKEN_PARAMETER}={self.token}"
