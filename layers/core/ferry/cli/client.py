"""How the CLI reaches the API: $FERRY_API_URL/$FERRY_TOKEN, else $FERRY_HOME/local.json."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from ferry.local.home import default_home


class CliError(Exception):
    """Shown to the user as one line, with a non-zero exit."""


class ApiClient:
    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    @classmethod
    def from_environment(cls) -> ApiClient:
        api_url = os.environ.get("FERRY_API_URL")
        token = os.environ.get("FERRY_TOKEN")
        if not (api_url and token):
            local_json = default_home() / "local.json"
            if not local_json.exists():
                raise CliError(
                    "no API configured: set FERRY_API_URL and FERRY_TOKEN, or start `ferry up`"
                )
            saved = json.loads(local_json.read_text())
            api_url, token = api_url or saved["api_url"], token or saved["token"]
        return cls(str(api_url), str(token))

    def get(self, path: str) -> Any:
        try:
            response = self._http.get(path)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.api_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise CliError(f"{response.status_code}: {detail}")
        return response.json()
