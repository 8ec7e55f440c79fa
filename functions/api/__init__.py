"""ApiFunction."""
