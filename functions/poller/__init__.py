"""PollerFunction."""
