"""Reading repositories: resolve a branch's latest commit and read a file at a commit.

`source` holds the ports and pure checks, `open` picks the adapter for a repository record
(`local`, `remote`, or a REST adapter from `providers/`); `http` is the HTTP plumbing the
network adapters share. Imports point one way: open → adapters → http/source.
"""
