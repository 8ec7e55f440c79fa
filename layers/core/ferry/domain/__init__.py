"""Pure domain: models, status values and rules. No I/O here."""
