"""The Ferry agent: takes deploy requests from its queue and runs them with Docker Compose."""

import sys

__version__ = "0.1.0"

# The Docker SDK's own SSH transport is never used: an ssh:// Docker host is reached through the
# agent's tunnel (ssh_tunnel.py), which hands the SDK a local socket. Left importable, it loads
# paramiko and the cryptography behind it (about 30 MB of an idle agent's memory) whatever the
# host; the SDK imports it inside `try/except ImportError`, so marking it absent only leaves
# `ssh://` base URLs unsupported in the SDK, as they already are here.
sys.modules.setdefault("docker.transport.sshconn", None)  # type: ignore[arg-type]
