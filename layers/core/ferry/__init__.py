"""Ferry: GitOps for Docker Compose. The domain shared by functions, agent and CLI."""

__version__ = "0.1.0"
