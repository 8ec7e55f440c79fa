"""Credentials: opaque tokens stored hashed, secrets stored encrypted."""
