"""GET /api/v1/events: Server-Sent Events, one `update` per change, naming the changed path.
The first block names where the stream starts (`id:`), so a reconnect resumes from there.

Under uvicorn the stream stays open (with keep-alive comments). Under Lambda (Mangum, which
buffers the whole response) it answers as a bounded long-poll: it returns as soon as changes
arrived or after ~25 s, and the browser's EventSource reconnects with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ferry.store.change_reader import ChangeReader

router = APIRouter(tags=["events"])

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
LONG_POLL_SECONDS = 25.0


def _frame(seq: int, data: dict[str, object]) -> str:
    return f"id: {seq}\nevent: update\ndata: {json.dumps(data)}\n\n"


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
    since: Annotated[int | None, Query(ge=0, description="Resume after this event id.")] = None,
) -> StreamingResponse:
    """Live changes. Resume with the `Last-Event-ID` header (EventSource sends it) or `?since=`;
    without either the stream starts at the current state."""
    cursor = since if since is not None else None
    if cursor is None and last_event_id and last_event_id.strip().isdigit():
        cursor = int(last_event_id.strip())
    if cursor is None:
        reader = await run_in_threadpool(ChangeReader.at_current_state)
    else:
        reader = ChangeReader(cursor)
    bounded = "aws.event" in request.scope  # Mangum marks Lambda requests

    async def stream(reader: ChangeReader) -> AsyncIterator[str]:
        # Where the stream starts, as the client's last event id (a block without data sets it
        # and dispatches nothing): a client that reconnects before any change resumes here
        # instead of loading everything again (behind API Gateway every quiet long-poll ends so).
        yield f"retry: 2000\nid: {reader.position}\n\n"
        started = last_sent = time.monotonic()
        while not await request.is_disconnected():
            changes = await run_in_threadpool(reader.poll)
            for change in changes:
                yield _frame(change.seq, change.model_dump(exclude={"seq", "at"}))
                last_sent = time.monotonic()
            now = time.monotonic()
            if bounded and (changes or now - started > LONG_POLL_SECONDS):
                return
            if now - last_sent > KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = now
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        stream(reader),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
