"""Calls from this process reach the embedded cloud's server without a socket.

The local stack's own code (the API, the Lambda handlers, the pollers, moto's ASL interpreter)
runs in the same process as the moto server it calls. Over loopback HTTP every call pays for a
connection, a request parsed by werkzeug's development server and a new server thread: measured
2.6 ms for a DynamoDB GetItem, against 1.4 ms when the same request is handed to the same WSGI
application in the caller's thread. AWS has no such cost, so the local stack does not pay it.

What stays the same: the request is the one botocore signed for the network (method, path,
query, headers, body), it enters moto through the server's own WSGI application (so IAM checks,
the service dispatch and the DynamoDB lock see exactly what they would over HTTP), and the
answer is parsed by botocore as if it came off the wire. An error inside moto becomes a 500, as
the development server would answer. Processes other than this one (the agent, the CLI) still
speak HTTP to the server.

The signature is left out. botocore signs every request from the caller's secret key, and
moto recomputes the signature to compare it with the one sent: together about a third of an
in-process call's own cost, for a check that could only agree (the request never leaves this
process). A request for a registered server gets every header signing would add (the date, the
session token, the payload's hash for S3) and an Authorization header that names the caller's
access key and scope as a signature would, but no signature; it carries a header with a token
of this process, and moto's signature check passes such requests. The access key still names
the caller, and every permission is still checked against its role. Presigned URLs are signed
as before (another process uses them), and requests over HTTP are checked in full.

The WSGI application is skipped for requests of JSON protocols (a POST to `/` naming its
operation in `X-Amz-Target`: DynamoDB, SQS, Step Functions, ...). Which moto handler answers
such a request is found once per service through the server's own application (its host
inference and URL map), and then called as that application's view calls it, with the same
request object; Flask's per-request machinery around it was a quarter of a GetItem's cost.
Requests of other shapes (Lambda's REST paths, S3, the moto API) still go through the
application.

Only URLs of a server registered here are taken (`register` / `unregister`); every other
request goes to the network as usual. The handler is added to botocore's built-in handlers, so
sessions created after `install()` carry it (moto's own mock uses the same hook).
"""

from __future__ import annotations

import io
import logging
import secrets
import sys
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import SplitResult, urlsplit

from botocore.auth import SIGV4_TIMESTAMP, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.compat import HTTPHeaders, get_current_datetime
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    Request,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.core.utils import convert_to_flask_response
from moto.iam import access_control
from moto.moto_api import recorder
from werkzeug.exceptions import HTTPException
from werkzeug.test import EnvironBuilder, run_wsgi_app

_LOGGER = logging.getLogger(__name__)
_APPLICATIONS: dict[str, Any] = {}
# (application, service named by the credential scope, X-Amz-Target's prefix) → moto's handler
# for `POST /` (None: that request keeps going through the application).
_DIRECT_HANDLERS: dict[tuple[int, str, str], Any] = {}
_GUARD = threading.Lock()
_installed = False

# Hop-by-hop framing the development server removes before the application sees the request:
# the body handed over here is already whole.
_FRAMING_HEADERS = frozenset({"transfer-encoding", "expect", "connection"})


# Marks a request handed over in this process (see the module's docstring); the token cannot
# be guessed by another process, so a request over HTTP cannot claim it.
IN_PROCESS_HEADER = "X-Ferry-In-Process"
# Signers of a request's headers; their presigning subclasses put the signature in a URL that
# another process uses, and keep signing.
_HEADER_SIGNERS = (SigV4Auth, S3SigV4Auth)
_TOKEN = secrets.token_hex(16)


def install() -> None:
    """Add the handler to botocore's built-in handlers once per process."""
    global _installed
    with _GUARD:
        if not _installed:
            BUILTIN_HANDLERS.append(("before-send", _send_in_process))
            _skip_signature_check_in_process()
            _label_instead_of_signing()
            _installed = True


def _label_instead_of_signing() -> None:
    botocore_add_auth = SigV4Auth.add_auth

    def add_auth(self: SigV4Auth, request: AWSRequest) -> None:
        if type(self) not in _HEADER_SIGNERS or _server(urlsplit(request.url or ""))[1] is None:
            botocore_add_auth(self, request)
            return
        if self.credentials is None:
            raise NoCredentialsError()
        request.context["timestamp"] = get_current_datetime().strftime(SIGV4_TIMESTAMP)
        modify: Any = getattr(self, "_modify_request_before_signing")  # noqa: B009 (private)
        modify(request)  # the date, the session token and the payload's headers, as signing
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, "
            "SignedHeaders=host, Signature=in-process"
        )

    SigV4Auth.add_auth = add_auth  # type: ignore[method-assign]


def _server(parts: SplitResult) -> tuple[str, Any]:
    """The base URL of a request's server, and the application registered for it (or None)."""
    base_url = f"{parts.scheme}://{parts.netloc}"
    return base_url, _APPLICATIONS.get(base_url)


def _skip_signature_check_in_process() -> None:
    request_class = access_control.IAMRequestBase
    moto_check = request_class.check_signature

    def check_signature(self: Any) -> None:
        if self._headers.get(IN_PROCESS_HEADER) == _TOKEN:
            return
        moto_check(self)

    request_class.check_signature = check_signature  # type: ignore[method-assign]


def register(base_url: str, application: Any) -> None:
    """Serve requests for `base_url` (scheme://host:port) with the WSGI `application`."""
    install()
    with _GUARD:
        _APPLICATIONS[base_url.rstrip("/")] = application


def unregister(base_url: str) -> None:
    with _GUARD:
        _APPLICATIONS.pop(base_url.rstrip("/"), None)
        _DIRECT_HANDLERS.clear()  # keyed by applications' ids, which a new one may reuse


class _WholeBody(io.BytesIO):
    """A finished response body, readable the ways botocore reads one off urllib3."""

    def stream(self, amt: int = 1024 * 64, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


def _send_in_process(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
    parts = urlsplit(request.url)
    base_url, application = _server(parts)
    if application is None:
        return None
    environ = _environ(request, parts.path, parts.query, base_url)
    handler = _direct_handler(application, environ)
    if handler is not None:
        return _answer_directly(handler, environ, request.url)
    try:
        body_chunks, status, headers = run_wsgi_app(application, environ, buffered=True)
        content = b"".join(body_chunks)
    except Exception:
        # The development server answers 500 for an exception escaping the application.
        _LOGGER.exception("the embedded cloud failed on %s %s", request.method, parts.path)
        return AWSResponse(request.url, 500, HTTPHeaders(), _WholeBody(b""))
    response_headers = HTTPHeaders.from_pairs(list(headers.items()))
    return AWSResponse(
        request.url, int(status.split(" ", 1)[0]), response_headers, _WholeBody(content)
    )


def _direct_handler(application: Any, environ: dict[str, Any]) -> Any:
    """moto's handler for a JSON-protocol request (see the module's docstring), or None."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if not target or environ["REQUEST_METHOD"] != "POST" or environ["PATH_INFO"] != "/":
        return None
    scope = environ.get("HTTP_AUTHORIZATION", "").split(",", 1)[0].split("/")
    service = scope[3] if len(scope) == 5 else ""
    key = (id(application), service, target.split(".", 1)[0])
    if key not in _DIRECT_HANDLERS:
        _DIRECT_HANDLERS[key] = _handler_for_root(application, environ)
    return _DIRECT_HANDLERS[key]


def _handler_for_root(application: Any, environ: dict[str, Any]) -> Any:
    """What the server's application would call for this `POST /`: its service's Flask app (by
    the dispatcher's own inference), that app's rule for `/`, and the handler behind the view."""
    try:
        service_app = application.get_application(environ)
        endpoint, arguments = service_app.url_map.bind("localhost").match("/", method="POST")
    except Exception:  # no rule, or no dispatcher: keep the application's path
        return None
    view = service_app.view_functions.get(endpoint)
    if arguments or not isinstance(view, convert_to_flask_response):
        return None
    return view.callback


class _ServerRequest(Request):
    """moto's request as its server makes it (`from_wsgi_server`), without Flask's wrapper of it,
    which asks for the current Flask app (there is none here: each ask raised and caught an
    error) to read its size limits, unset in moto's app."""

    from_wsgi_server = True


def _answer_directly(handler: Any, environ: dict[str, Any], url: str) -> AWSResponse:
    """Call the handler as moto's Flask view does, and answer as Flask would have."""
    request = _ServerRequest(environ)
    try:
        recorder._record_request(request)
        result = handler(request, request.raw_url, dict(request.headers))
    except ClientError as exc:  # as moto's view answers it
        result = 400, {}, exc.response["Error"]["Message"]
    except HTTPException as exc:  # as Flask answers an HTTP error raised by a view
        result = exc.code or 500, dict(exc.get_headers()), exc.get_body()
    except Exception:
        _LOGGER.exception("the embedded cloud failed on POST / (%s)", environ["HTTP_X_AMZ_TARGET"])
        return AWSResponse(url, 500, HTTPHeaders(), _WholeBody(b""))
    status, headers, content = result if len(result) == 3 else (200, {}, result)
    body = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
    response_headers = HTTPHeaders()
    for name, value in headers.items():
        response_headers[name] = str(value)
    if "content-type" not in response_headers:
        response_headers["Content-Type"] = "text/html; charset=utf-8"  # Flask's default
    response_headers["Content-Length"] = str(len(body))
    return AWSResponse(url, int(status), response_headers, _WholeBody(body))


def _environ(request: AWSPreparedRequest, path: str, query: str, base_url: str) -> dict[str, Any]:
    body = _body_bytes(request.body)
    headers: dict[str, str] = {}
    preserved_names: dict[str, str] = {}
    for name, raw_value in request.headers.items():
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else str(raw_value)
        if name.lower() in _FRAMING_HEADERS:
            continue
        headers[name] = value
        if should_preserve_original_header_name(name):
            preserved_names.setdefault(environ_key_for_header(name), name)
    headers[IN_PROCESS_HEADER] = _TOKEN
    if request.method == "POST" and path == "/" and not query and not preserved_names:
        return _root_environ(base_url, headers, body)
    builder = EnvironBuilder(
        method=request.method,
        base_url=base_url,
        path=path or "/",
        query_string=query,
        headers=list(headers.items()),
        data=body,
        errors_stream=sys.stderr,
        multithread=True,
    )
    try:
        environ: dict[str, Any] = builder.get_environ()
    finally:
        builder.close()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    if preserved_names:
        # As moto's request handler does for S3 metadata keys spelled with underscores.
        for key, name in preserved_names.items():
            environ[key] = headers[name]
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved_names
    return environ


def _root_environ(base_url: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The environ werkzeug's EnvironBuilder makes for a POST to `/` (nothing in the path or
    query to encode, no header to keep the spelling of), built directly: the builder was a
    tenth of an in-process call's cost."""
    parts = urlsplit(base_url)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "REQUEST_URI": "/",
        "RAW_URI": "/",
        "SERVER_NAME": parts.hostname or "localhost",
        "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
        "HTTP_HOST": parts.netloc,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": parts.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        environ[key] = value
    environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(body)
