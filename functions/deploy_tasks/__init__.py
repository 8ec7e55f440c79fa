"""MarkInProgressFunction and ApplyDeployResultFunction (deploy state machine tasks)."""
