"""Who may talk to the server: Host names, same-origin changes, an optional access token, and the
security headers of every response.

:class:`Guard` is an ASGI middleware wrapped around the whole app. For each HTTP request it

1. refuses a ``Host`` header that is not one of the server's own names (400 ``bad_host``), so a web
   site whose domain is made to resolve to this machine (DNS rebinding) gets nothing;
2. when an access token is set, refuses a request that carries it neither in an
   ``Authorization: Bearer`` header, an ``X-Mattekit-Token`` header nor the ``mattekit_token``
   cookie (401 ``unauthorized``); ``GET /?token=...`` sets that cookie (``HttpOnly``,
   ``SameSite=Strict``) and redirects to ``/``. Tokens are compared in constant time;
3. refuses a state-changing request (any method but GET, HEAD, OPTIONS) that a browser sent from
   another origin (403 ``cross_origin``): ``Origin`` must be exactly this server's own origin (a
   sandboxed iframe, a ``data:``/``file:`` page or a redirect sends ``Origin: null``, which is
   foreign); without ``Origin``, a ``Sec-Fetch-Site`` other than ``same-origin``/``none`` or a
   ``Referer`` from another origin is foreign too. Programs such as curl send none of these;
4. adds ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, a
   ``Content-Security-Policy`` (``frame-ancestors 'none'``; uploaded and produced files are also
   ``sandbox``-ed), ``Referrer-Policy`` and ``Cross-Origin-Resource-Policy`` to every response;
5. answers an unhandled exception with a JSON 500 (one log entry), with the same headers.

The design follows the usual defences of local web apps against cross-site request forgery and
DNS rebinding (e.g. Jupyter's ``allow_origin``/token, the OWASP CSRF cheat sheet's origin check).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import socket
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("mattekit.server")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_COOKIE = "mattekit_token"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")

_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI (served from the swagger-ui-bundle package) sets inline styles and data: icons
_DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# an uploaded or produced file opened on its own: no script, no plug-in, no framing
_FILE_CSP = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
)


def host_name(host: str) -> str:
    """The name part of a ``Host`` header: ``"127.0.0.1:7860"`` -> ``"127.0.0.1"``,
    ``"[::1]:7860"`` -> ``"::1"``, ``"Example.COM"`` -> ``"example.com"``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_loopback(bind_host: str) -> bool:
    """Whether listening on ``bind_host`` is reachable from this machine only."""
    if bind_host == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind_host).is_loopback
    except ValueError:
        return False


def machine_names(bind_host: str) -> tuple[str, ...]:
    """The host names and addresses a browser can use to reach a server bound to ``bind_host``.

    Loopback names always; for a wildcard bind (``0.0.0.0``, ``::``) also this machine's host
    name, fully qualified name and the addresses they resolve to, and the address of each
    interface that routes outwards (found by ``connect`` on a UDP socket, which sends nothing).
    An interface not found this way can be added with ``serve --allow-host``.
    """
    names = set(LOOPBACK_HOSTS)
    if bind_host not in WILDCARD_HOSTS:
        names.add(host_name(bind_host))
    if is_loopback(bind_host):
        return tuple(sorted(names))
    hostname = socket.gethostname()
    for name in {hostname, socket.getfqdn()}:
        if not name:
            continue
        names.add(name.lower())
        with contextlib.suppress(OSError):
            names.update(str(info[4][0]).split("%")[0].lower() for info in socket.getaddrinfo(name, None))
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                names.add(s.getsockname()[0].split("%")[0].lower())
        except OSError:
            pass
    return tuple(sorted(names))


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the server's."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def _headers(scope) -> dict[str, str]:
    """The request's headers by lower-case name. A header sent more than once keeps every copy,
    joined as HTTP joins list values (``", "``; cookies ``"; "``), so no check can be passed by
    a second copy of a header that only the other copy fails (``Origin: <foreign>`` followed by
    ``Origin: <own>`` is not the server's own origin)."""
    headers: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        if name in headers:
            value = headers[name] + ("; " if name == "cookie" else ", ") + value
        headers[name] = value
    return headers


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def cross_site_reason(method: str, headers: dict[str, str], own_origin: str) -> str | None:
    """Why a request is a browser's request from another origin, or ``None`` if it is not.

    Only state-changing methods are judged; ``own_origin`` is ``scheme://host[:port]`` as the
    request's ``Host`` header names this server.
    """
    if method in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().lower() != own_origin:
            return f"requests from another site ({origin.strip()[:100] or 'empty Origin'}) are refused"
        return None
    fetch_site = headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return f"requests from another site (Sec-Fetch-Site: {fetch_site[:30]}) are refused"
    referer = headers.get("referer")
    # (a URL holds no white space: a Referer with some is two copies joined, or not a URL)
    if referer is not None and (_origin_of(referer) != own_origin or any(c.isspace() for c in referer.strip())):
        return "requests from another site (its Referer is not this server) are refused"
    return None


def presented_token(headers: dict[str, str]) -> str | None:
    """The token a request carries: ``Authorization: Bearer``, ``X-Mattekit-Token`` or the cookie."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if "x-mattekit-token" in headers:
        return headers["x-mattekit-token"].strip()
    if "cookie" in headers:
        cookie = SimpleCookie()
        try:
            cookie.load(headers["cookie"])
        except Exception:  # a malformed Cookie header carries no token
            return None
        if TOKEN_COOKIE in cookie:
            return cookie[TOKEN_COOKIE].value
    return None


def _csp_for(path: str) -> str:
    if path.startswith("/api/jobs/") and ("/outputs/" in path or path.endswith("/input")):
        return _FILE_CSP
    if path == "/docs" or path.startswith("/docs/"):
        return _DOCS_CSP
    return _PAGE_CSP


class Guard:
    """ASGI middleware applying the rules of this module.

    Args:
        app: the ASGI app to protect.
        allowed_hosts: names the ``Host`` header may carry (``None``: any).
        token: the access token, or ``None`` for none.
    """

    def __init__(self, app, allowed_hosts: tuple[str, ...] | None = None, token: str | None = None):
        self.app = app
        self.allowed_hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        self.token = token or None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        path = scope.get("path", "")
        security = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", _csp_for(path).encode()),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        started = False

        async def send_secured(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = dict(
                    message, headers=list(message.get("headers", [])) + [h for h in security if h[0] not in present]
                )
            await send(message)

        refusal = self._refusal(scope, headers, path)
        if refusal is not None:
            status, code, detail, extra = refusal
            return await _send_json(send_secured, status, code, detail, extra)
        try:
            await self.app(scope, receive, send_secured)
        except Exception as exc:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), path)
            await _send_json(send_secured, 500, "internal", f"internal error ({type(exc).__name__})")

    def _refusal(self, scope, headers: dict[str, str], path: str):
        host = headers.get("host", "")
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            return 400, "bad_host", f"host {host[:100]!r} is not served here", []
        method = scope.get("method", "GET")
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [None])[0] if path == "/" and method in ("GET", "HEAD") else None
            if given is not None and token_matches(given, self.token):
                # the printed link: keep the token in a cookie, not in the address bar
                cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                return 303, "token_accepted", "token accepted", [(b"location", b"/"), (b"set-cookie", cookie.encode())]
            if not token_matches(presented_token(headers), self.token):
                return (
                    401,
                    "unauthorized",
                    "this server needs its access token: open the link "
                    "`mattekit serve` printed (it ends in ?token=...), or send the header "
                    "'Authorization: Bearer <token>'",
                    [(b"www-authenticate", b"Bearer")],
                )
        scheme = scope.get("scheme", "http")
        reason = cross_site_reason(method, headers, f"{scheme}://{host.strip().lower()}")
        if reason is not None:
            return 403, "cross_origin", reason, []
        return None


async def _send_json(send, status: int, code: str, detail: str, extra_headers=()) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
