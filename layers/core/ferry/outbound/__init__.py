"""Outbound traffic to user-supplied destinations (git providers, notification targets).

`ferry.outbound.http` holds the SSRF checks and the safe httpx client; `ferry.outbound.notify`
sends apprise notifications under the same checks. They are separate modules so that code which
only needs HTTP does not import apprise.
"""
