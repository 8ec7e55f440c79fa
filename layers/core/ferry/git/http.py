"""HTTP plumbing shared by the REST adapters (`providers/`) and git's smart HTTP (`remote`):
authorization, the providers' rate-limit signals, and their error messages."""

from __future__ import annotations

import base64
import json
import time
from email.utils import parsedate_to_datetime

import httpx

from ferry.errors import TransientError

# Provider messages are echoed into errors users see; a hostile server gets a line, not a page.
_MAX_MESSAGE_CHARS = 200


class ProviderRateLimited(TransientError):
    """The provider throttles us; `retry_after` is its advice in seconds (None without one)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def basic_authorization(username: str, password: str) -> str:
    """An HTTP Basic `Authorization` value."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {encoded}"


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float | None:
    """How long the provider asks us to wait: `Retry-After` (seconds or an HTTP date), else the
    reset time of its rate-limit window (`X-RateLimit-Reset` on GitHub and Gitea,
    `RateLimit-Reset` on GitLab, both epoch seconds). None when it says nothing."""
    now = time.time() if now is None else now
    retry_after = response.headers.get("retry-after", "").strip()
    if retry_after:
        if retry_after.isdigit():
            return float(retry_after)
        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - now)
        except (TypeError, ValueError):
            pass
    for header in ("x-ratelimit-reset", "ratelimit-reset"):
        reset = response.headers.get(header, "").strip()
        if reset.isdigit():
            return max(0.0, float(reset) - now)
    return None


def is_rate_limited(response: httpx.Response) -> bool:
    """429 anywhere; 403 when GitHub says the quota is spent (`X-RateLimit-Remaining: 0`) or asks
    us to back off (`Retry-After`, its secondary limits)."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    remaining = response.headers.get("x-ratelimit-remaining", "").strip()
    return remaining == "0" or "retry-after" in response.headers


def provider_message(response: httpx.Response) -> str:
    """The provider's own explanation from an error body (`message` on GitHub, GitLab, Gitea and
    Azure DevOps, `error` on some GitLab answers), shortened; the status phrase otherwise."""
    text = ""
    try:
        body = json.loads(response.content)
    except ValueError:
        text = response.text.strip()
    else:
        if isinstance(body, dict):
            detail = body.get("message", body.get("error", ""))
            text = detail if isinstance(detail, str) else json.dumps(detail)
    text = " ".join(text.split()) or response.reason_phrase
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return text
