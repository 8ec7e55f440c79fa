"""AWS clients from the agent's session, rebuilt before the session's credentials expire.

The control plane hands out short-lived credentials (STS; moto locally) that reach only this agent's
queue, the task answers and the bundles handed to it through the bundle bucket. Requests last
minutes and several threads share the clients, so the session is fetched again in the background a
few minutes before expiry and the clients are swapped under a lock: a call already under way
finishes with the client it holds (its credentials are still valid), the next call takes the new
one. Nothing running is interrupted.

A session without credentials (no agent role configured) means the agent's own AWS credentials
(instance profile, AWS_* variables); nothing then needs refreshing.

Memory (an agent idles for days): the clients come from one plain botocore session, so each
service's model is loaded once and shared by every rebuild (boto3, with its resources and
transfer manager, is not loaded); botocore's table of endpoints is read for the services the
agent calls only (endpoints.py); the S3 client, needed only for bundles too large to travel
inline, is made at the first such bundle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ferry.domain.agent_messages import AgentSession, BundleObject
from ferry_agent.bundles import BundleRefused
from ferry_agent.control_plane import ControlPlaneError
from ferry_agent.endpoints import AgentEndpointsLoader

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
        # A botocore session is not safe to share across threads: one client is made at a time.
        self._factory = botocore.session.Session()
        self._factory.get_component("data_loader").file_loader = AgentEndpointsLoader()
        self._factory_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session, self._sqs, self._sfn = self._build(session)
        self._s3: S3Client | None = None  # made from self._session when a bundle needs it

    def _client(self, service: str, session: AgentSession) -> Any:
        options: dict[str, Any] = {}
        if session.credentials is not None:
            options.update(
                aws_access_key_id=session.credentials.access_key_id,
                aws_secret_access_key=session.credentials.secret_access_key,
                aws_session_token=session.credentials.session_token,
            )
        with self._factory_lock:
            return self._factory.create_client(
                service,
                region_name=session.region,
                endpoint_url=session.aws_endpoint_url or None,
                config=self._config,
                **options,
            )

    def _build(self, session: AgentSession) -> tuple[AgentSession, SQSClient, SFNClient]:
        return (
            session,
            cast("SQSClient", self._client("sqs", session)),
            cast("SFNClient", self._client("stepfunctions", session)),
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
            session, s3 = self._session, self._s3
        if s3 is not None:
            return s3
        made = cast("S3Client", self._client("s3", session))
        with self._lock:
            if self._session is session and self._s3 is None:
                self._s3 = made
        return made

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
            self._session, self._sqs, self._sfn = built
            self._s3 = None  # made again, with the new credentials, by the next bundle
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
