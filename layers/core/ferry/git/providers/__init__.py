"""Repositories on git hosts read through their REST APIs: GitHub (and Enterprise Server),
GitLab, Gitea and Forgejo, Azure DevOps. `factory.provider_source` picks the adapter for a
repository URL."""
