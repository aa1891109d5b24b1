"""The console behind TRIPWIRE_API_TOKEN: the bearer header, or a session cookie made from it."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

__all__ = [
    "COOKIE",
    "bearer_ok",
    "is_console",
    "is_open",
    "session_value",
    "signed_in",
    "unauthorized",
]

COOKIE = "tripwire_console"
_OPEN = frozenset({"/", "/console", "/console/login"})


def is_console(path: str) -> bool:
    return path in ("/", "/console") or path.startswith("/console/")


def is_open(path: str) -> bool:
    """Reachable without the token: the sign-in page, its assets, redirects to it."""
    return path in _OPEN or path.startswith("/console/static/")


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, never the token itself.

    A browser cannot send a bearer header when it follows a link, so the console signs
    in once with the token and keeps this instead; changing the token signs every
    browser out.
    """
    return hmac.new(token.encode(), b"tripwire console session 1", hashlib.sha256).hexdigest()


def bearer_ok(request: Request, token: str) -> bool:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credential, token)


def signed_in(request: Request, token: str) -> bool:
    """The bearer header (as every API client sends it) or the console's cookie."""
    cookie = request.cookies.get(COOKIE, "")
    return bearer_ok(request, token) or hmac.compare_digest(cookie, session_value(token))


def unauthorized(request: Request) -> Response:
    """A page asks to sign in (303 to the form); anything else is a 401, as the API's."""
    wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if wants_page:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)
    return JSONResponse(
        {"exception_message": "Unauthorized: sign in at /console/login or send the bearer token"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
