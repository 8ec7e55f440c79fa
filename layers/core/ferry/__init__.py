"""Ferry: GitOps for Docker Compose. This package is the domain shared by functions, agent and CLI."""

__version__ = "0.1.0"
