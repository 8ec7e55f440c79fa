"""The records the API offers: repositories, applications, agents (and their sessions),
notification targets, and the key rotation that re-encrypts them. Changes that need a sync or a
deploy hand over to `ferry.sync` and `ferry.deploy`."""
