"""The embedded local cloud: moto as AWS, the same template.yaml, the same handlers in-process.

Nothing here is imported by Lambda code; it only runs on a developer's or user's machine.
"""
