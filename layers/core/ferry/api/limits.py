"""Request body limits for every route: 413 past the limit, before the body is read whole."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(limit: int) -> str:
    return f"request bodies are limited to {limit} bytes"


class BodyLimit:
    """ASGI middleware: a declared Content-Length past `limit` is answered 413 at once; a body
    sent without one (chunked) is counted as it arrives and ends in 413 once it passes `limit`.

    The counted case raises an HTTPException from `receive`: FastAPI lets HTTPExceptions through
    its body parsing (other exceptions would become a 400), so the route never runs.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse({"detail": too_large(self.limit)}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, limited, send)
