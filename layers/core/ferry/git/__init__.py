"""Reading repositories: resolve a branch's latest commit and read a file at a commit."""

from ferry.git.source import GitSource, normalize_repo_path, open_source

__all__ = ["GitSource", "normalize_repo_path", "open_source"]
