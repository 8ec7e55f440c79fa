"""How the CLI reaches the API: $FERRY_API_URL/$FERRY_TOKEN, else $FERRY_HOME/local.json."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from ferry.local.home import default_home

DEFAULT_TIMEOUT_SECONDS = 30.0


class CliError(Exception):
    """Shown to the user as one line, with a non-zero exit. `status` is the API's HTTP status
    when the API answered with an error."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched Server-Sent Event (comments such as keep-alives are never dispatched)."""

    event: str
    data: str
    id: str | None = None


class EventStream:
    """Events from a text/event-stream, line by line (the WHATWG event-stream rules, without
    `retry`, which the caller's own reconnect delay replaces).

    `last_id` is the stream's last event id as the rules keep it: set when a block that named
    one ends, also when it has no data and so dispatches nothing (the API's first block, which
    says where the stream starts); never from a block cut off before its end, whose event would
    then be skipped by a reconnect."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.last_id: str | None = None

    def __iter__(self) -> Iterator[ServerSentEvent]:
        event, block_id = "", self.last_id
        data: list[str] = []
        for raw in self._lines:
            line = raw.rstrip("\r\n")
            if not line:
                self.last_id = block_id
                if data:
                    yield ServerSentEvent(
                        event=event or "message", data="\n".join(data), id=block_id
                    )
                event, data = "", []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id" and "\0" not in value:
                block_id = value


def _detail(response: httpx.Response) -> str:
    """The API's `detail` as one line (FastAPI's validation errors come as a list)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail: Any = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:]) or 'request'}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        )
    text = str(detail or response.text.strip() or response.reason_phrase)
    text = " ".join(text.split())
    if response.status_code == 401:
        text += " (check FERRY_TOKEN, or the token in local.json)"
    elif response.status_code == 429 and response.headers.get("retry-after"):
        text += f" (retry after {response.headers['retry-after']} s)"
    elif response.status_code >= 500 and not detail:
        text = f"{response.status_code} {text}"
    return text


class ApiClient:
    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=DEFAULT_TIMEOUT_SECONDS,
        )

    @classmethod
    def from_environment(cls) -> ApiClient:
        api_url = os.environ.get("FERRY_API_URL")
        token = os.environ.get("FERRY_TOKEN")
        if not (api_url and token):
            local_json = default_home() / "local.json"
            if not local_json.exists():
                missing = " and ".join(
                    name
                    for name, value in (("FERRY_API_URL", api_url), ("FERRY_TOKEN", token))
                    if not value
                )
                raise CliError(
                    f"no API configured: set {missing}, or run `ferry up` "
                    f"(it writes {local_json}; FERRY_HOME chooses the folder)"
                )
            try:
                saved = json.loads(local_json.read_text())
                api_url, token = api_url or saved["api_url"], token or saved["token"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CliError(f"cannot read {local_json}: {exc!r}") from exc
        return cls(str(api_url), str(token))

    def clone(self) -> ApiClient:
        """A client of its own for another thread (httpx clients are not shared across threads)."""
        return ApiClient(self.api_url, self._token)

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """The response of a successful call; CliError with the API's detail otherwise."""
        try:
            response = self._http.request(
                method,
                path,
                json=body,
                params={k: v for k, v in (params or {}).items() if v is not None},
                timeout=timeout if timeout is not None else DEFAULT_TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as exc:
            raise CliError(self._unreachable(exc)) from exc
        if response.status_code >= 400:
            raise CliError(_detail(response), status=response.status_code)
        return response

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        response = self.request("POST", path, body=body, timeout=timeout)
        return response.json() if response.content else None

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body).json()

    def delete(
        self, path: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> httpx.Response:
        """The raw response: some deletions answer 202 (still at work) instead of 204."""
        return self.request("DELETE", path, params=params, timeout=timeout)

    @contextmanager
    def events(
        self, last_event_id: str | None = None, *, read_timeout: float = 60.0
    ) -> Iterator[EventStream]:
        """The live feed (GET /events) from just after `last_event_id`, or from now.

        A read that waits longer than `read_timeout` (the server sends a keep-alive every 15 s)
        ends the stream with CliError, like any other transport failure.
        """
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            with self._http.stream(
                "GET",
                "/events",
                headers=headers,
                timeout=httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, read=read_timeout),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CliError(_detail(response), status=response.status_code)
                yield EventStream(response.iter_lines())
        except httpx.HTTPError as exc:
            raise CliError(self._unreachable(exc)) from exc

    def _unreachable(self, exc: httpx.HTTPError) -> str:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        hint = "" if isinstance(exc, httpx.TimeoutException) else " (is the API running?)"
        return f"cannot reach {self.api_url}: {reason}{hint}"
