"""The status page: `GET /` and its assets under `/ui/`, shipped in the package (no build step).

The page itself is public; everything it shows comes from the API with the token the user gives
it (kept in the browser's sessionStorage and sent as a Bearer header, never in a query string).
The strict Content-Security-Policy goes on these responses only: the OpenAPI page at /docs loads
Swagger UI from a CDN with an inline script, which that policy would block.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request, Response

from ferry.errors import NotFound

router = APIRouter(include_in_schema=False)

# Nothing inline, nothing from elsewhere: scripts, styles and the icon come from this origin,
# the page talks only to this API, and no form is ever submitted (the sign-in form is handled by
# the script, so a token can never end up in a URL even if the script fails to load).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time (cheap with the ETag), so a new release's files are picked up at once.
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.(?:js|css|svg)")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@functools.cache
def load_asset(name: str) -> Asset:
    """A file of the package's `static/` folder (flat: a name, never a path)."""
    if name != "index.html" and not _ASSET_NAME.fullmatch(name):
        raise NotFound(f"{name} not found")
    file = resources.files("ferry.api").joinpath("static", name)
    if not file.is_file():
        raise NotFound(f"{name} not found")
    body = file.read_bytes()
    suffix = name[name.rindex(".") :]
    return Asset(body, CONTENT_TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def _answer(request: Request, asset: Asset) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    return Response(body, media_type=asset.content_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
def page(request: Request) -> Response:
    """The status page (public: it asks for a token before it shows anything)."""
    return _answer(request, load_asset("index.html"))


@router.api_route("/ui/{name}", methods=["GET", "HEAD"])
def asset(name: str, request: Request) -> Response:
    """The page's scripts, style sheet and icon."""
    return _answer(request, load_asset(name))
