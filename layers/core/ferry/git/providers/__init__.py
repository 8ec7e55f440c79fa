"""Repositories on git hosts read through their REST APIs: GitHub (and Enterprise Server),
GitLab, Gitea and Forgejo, Azure DevOps. `provider_source` picks the adapter for a repository."""

from ferry.git.providers.base import ProviderNotFound, ProviderRateLimited, ProviderSource
from ferry.git.providers.factory import PROVIDERS, parse_repository_url, provider_source

__all__ = [
    "PROVIDERS",
    "ProviderNotFound",
    "ProviderRateLimited",
    "ProviderSource",
    "parse_repository_url",
    "provider_source",
]
