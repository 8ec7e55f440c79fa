"""The agent's view of the Ferry API: who am I, where are my deploy requests, which
applications are mine, and what their health, drift and images are.

Every call is authenticated with the agent token; the API applies what an agent says only to the
agent's own applications.

The calls go through `requests`, which the Docker SDK loads anyway: httpx, and the CLI, async and
TLS machinery it loads with it, stays out of an idle agent's memory.
"""

from __future__ import annotations

import os

import requests
import requests.auth
from pydantic import TypeAdapter, ValidationError

from ferry.domain.agent_messages import (
    AgentApplication,
    AgentSession,
    DriftReport,
    HealthReport,
    HealthStatus,
    ImageReport,
    ImageReportAnswer,
    RequestState,
)


class ControlPlaneError(Exception):
    """The API refused us or could not be reached."""


class TokenRefused(ControlPlaneError):
    """The API refused the agent token (401): it was rotated or revoked. Retrying cannot help."""


class ReportRefused(ControlPlaneError):
    """The API will not take a report about that application (not ours, or gone): retrying the
    same report cannot help."""


class ControlPlane:
    """The agent's calls to the Ferry API, authenticated with its token."""

    def __init__(self, api_url: str, token: str, *, timeout: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._auth = _BearerToken(token)
        self._timeout = timeout
        # A private CA is named for TLS clients with SSL_CERT_FILE or SSL_CERT_DIR (OpenSSL and
        # httpx read them, requests does not); else requests' choice (REQUESTS_CA_BUNDLE, certifi).
        self._verify: str | bool = (
            os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR") or True
        )

    def _request(self, method: str, path: str, body: object = None) -> requests.Response:
        try:
            return requests.request(
                method,
                f"{self.api_url}/api/v1/agent/{path}",
                auth=self._auth,
                json=body,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,  # as before: an answer is the API's, not another server's
            )
        except requests.RequestException as exc:
            raise ControlPlaneError(f"cannot reach the Ferry API at {self.api_url}: {exc}") from exc

    def session(self) -> AgentSession:
        """Exchange the agent token for the agent's session (queue, region, credentials)."""
        response = self._request("GET", "session")
        if response.status_code == 401:
            raise TokenRefused("the Ferry API refused the agent token (401)")
        if response.status_code != 200:
            raise ControlPlaneError(
                f"the Ferry API answered {response.status_code}: {response.text[:200]}"
            )
        return AgentSession.model_validate(response.json())

    def heartbeat(self) -> None:
        """Tell the control plane this agent is alive (it is listed offline otherwise);
        TokenRefused once its token was rotated or revoked."""
        response = self._request("POST", "heartbeat")
        if response.status_code == 401:
            raise TokenRefused("the Ferry API refused the agent token (401)")
        if response.status_code != 204:
            raise ControlPlaneError(f"heartbeat refused ({response.status_code})")

    def request_is_current(self, request_id: str, application_id: str) -> bool:
        """Whether the deploy is still the application's current one (False once it was
        cancelled or superseded). Step Functions refuses the
        heartbeats of a stopped execution; asking also covers control planes that do not."""
        response = self._request("GET", f"requests/{request_id}?application_id={application_id}")
        if response.status_code == 404:
            # Unknown application: deleted meanwhile (its undeploy follows this request on the
            # queue, so finishing is harmless), or a request from outside the control plane. Only
            # an explicit "not current" stops a request.
            return True
        if response.status_code != 200:
            raise ControlPlaneError(
                f"state of request {request_id} answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        return RequestState.model_validate(response.json()).current

    def report_health(
        self, application_id: str, health: HealthStatus, detail: str | None = None
    ) -> None:
        """Report an application's settled health (ReportRefused: not this agent's, or gone)."""
        report = HealthReport(application_id=application_id, health_status=health, detail=detail)
        response = self._request("POST", "health", report.model_dump(mode="json"))
        if response.status_code in (403, 404):
            raise ReportRefused(
                f"health of {application_id} refused ({response.status_code}): "
                f"{response.text[:200]}"
            )
        if response.status_code != 204:
            raise ControlPlaneError(
                f"health report for {application_id} answered {response.status_code}: "
                f"{response.text[:200]}"
            )

    def _report(self, path: str, application_id: str, body: object) -> requests.Response:
        response = self._request("POST", path, body)
        if response.status_code in (403, 404):
            raise ReportRefused(
                f"{path} of {application_id} refused ({response.status_code}): "
                f"{response.text[:200]}"
            )
        if not 200 <= response.status_code < 300:
            raise ControlPlaneError(
                f"{path} report for {application_id} answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        return response

    def applications(self) -> list[AgentApplication]:
        """This agent's applications and what to watch for each."""
        response = self._request("GET", "applications")
        if response.status_code != 200:
            raise ControlPlaneError(
                f"the list of applications answered {response.status_code}: {response.text[:200]}"
            )
        try:
            return _APPLICATIONS.validate_json(response.content)
        except ValidationError as exc:
            raise ControlPlaneError(f"the list of applications is malformed: {exc}") from exc

    def report_drift(self, report: DriftReport) -> None:
        """Report what differs from what was deployed (ReportRefused: not ours, or gone)."""
        self._report("drift", report.application_id, report.model_dump(mode="json"))

    def report_images(self, report: ImageReport) -> ImageReportAnswer:
        """Report an image check; the answer says what the control plane did."""
        response = self._report("images", report.application_id, report.model_dump(mode="json"))
        try:
            return ImageReportAnswer.model_validate_json(response.content)
        except ValidationError as exc:
            raise ControlPlaneError(f"the image report's answer is malformed: {exc}") from exc


class _BearerToken(requests.auth.AuthBase):
    """The agent token on every call; given as `auth`, it also keeps requests from putting
    credentials of a ~/.netrc entry for the API's host in its place."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


_APPLICATIONS = TypeAdapter(list[AgentApplication])
