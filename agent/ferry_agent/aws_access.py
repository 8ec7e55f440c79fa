"""AWS clients from the agent's session, rebuilt before the session's credentials expire.

The control plane hands out short-lived credentials (STS; moto locally) that reach only this agent's
queue, the task answers and the bundles handed to it through the bundle bucket. Requests last
minutes and several threads share the clients, so the session is fetched again in the background a
few minutes before expiry and the clients are swapped under a lock: a call already under way
finishes with the client it holds (its credentials are still valid), the next call takes the new
one. Nothing running is interrupted.

A session without credentials (no agent role configured) means the agent's own AWS credentials
(instance profile, AWS_* variables); nothing then needs refreshing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ferry.domain.messages import AgentSession, BundleObject
from ferry_agent.bundles import BundleRefused
from ferry_agent.control_plane import ControlPlaneError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

log = logging.getLogger("ferry_agent")

RETRY_SECONDS = 15.0


def refresh_at(expiration: datetime, now: datetime, margin: timedelta) -> datetime:
    """When to fetch a new session: `margin` before `expiration`, but at the latest halfway
    through the time that is left (credentials shorter-lived than the margin), never before now."""
    left = expiration - now
    if left <= timedelta(0):
        return now
    return now + left - min(margin, left / 2)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AwsAccess:
    """The agent's SQS, Step Functions and S3 clients, always built from a valid session."""

    def __init__(
        self,
        fetch_session: Callable[[], AgentSession],
        session: AgentSession,
        *,
        refresh_margin_seconds: float = 300,
        max_pool_connections: int = 10,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._fetch_session = fetch_session
        self._margin = timedelta(seconds=refresh_margin_seconds)
        self._config = Config(
            max_pool_connections=max_pool_connections,
            retries={"mode": "standard", "max_attempts": 3},
            read_timeout=40,  # above the 20 s long poll
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session, self._sqs, self._sfn, self._s3 = self._build(session)

    def _build(self, session: AgentSession) -> tuple[AgentSession, SQSClient, SFNClient, S3Client]:
        options: dict[str, Any] = {"region_name": session.region}
        if session.credentials is not None:
            options.update(
                aws_access_key_id=session.credentials.access_key_id,
                aws_secret_access_key=session.credentials.secret_access_key,
                aws_session_token=session.credentials.session_token,
            )
        # A boto3 Session per build: the default session is not safe to share across threads.
        factory = boto3.session.Session(**options)
        endpoint = session.aws_endpoint_url or None
        return (
            session,
            factory.client("sqs", config=self._config, endpoint_url=endpoint),
            factory.client("stepfunctions", config=self._config, endpoint_url=endpoint),
            factory.client("s3", config=self._config, endpoint_url=endpoint),
        )

    @property
    def session(self) -> AgentSession:
        with self._lock:
            return self._session

    @property
    def queue_url(self) -> str:
        return self.session.queue_url

    def sqs(self) -> SQSClient:
        with self._lock:
            return self._sqs

    def sfn(self) -> SFNClient:
        with self._lock:
            return self._sfn

    def s3(self) -> S3Client:
        with self._lock:
            return self._s3

    def read_bundle(self, location: BundleObject) -> bytes:
        """A bundle handed over through the bundle bucket (BundleRefused when it cannot be
        read: gone, or not this agent's)."""
        try:
            response = self.s3().get_object(Bucket=location.bucket, Key=location.key)
            return response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise BundleRefused(
                f"the bundle could not be read from the bundle bucket: {exc}"
            ) from exc

    def next_refresh(self) -> datetime | None:
        """When the session is due to be fetched again (None: nothing expires)."""
        credentials = self.session.credentials
        if credentials is None:
            return None
        return refresh_at(credentials.expiration, self._clock(), self._margin)

    def refresh(self) -> None:
        """Fetch a new session and swap the clients (ControlPlaneError when the API refuses)."""
        built = self._build(self._fetch_session())
        with self._lock:
            self._session, self._sqs, self._sfn, self._s3 = built
        expiration = built[0].credentials.expiration if built[0].credentials else None
        log.info("AWS session refreshed (credentials valid until %s)", expiration or "-")

    def start(self) -> None:
        """Refresh in the background for as long as the agent runs."""
        self._thread = threading.Thread(target=self._run, name="credentials", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            due = self.next_refresh()
            if due is None:
                return
            if self._stop.wait(max(0.0, (due - self._clock()).total_seconds())):
                return
            while True:
                try:
                    self.refresh()
                    break
                except (ControlPlaneError, ValidationError) as exc:
                    # The old credentials may have minutes left: keep trying while they do.
                    log.warning("could not refresh the AWS session: %s; retrying", exc)
                    if self._stop.wait(RETRY_SECONDS):
                        return
