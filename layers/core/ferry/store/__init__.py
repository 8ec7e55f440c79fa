"""Data access: pynamodb tables and the stores that turn their rows into domain models.

Nothing above this package sees pynamodb or botocore errors: they become NotFound, Conflict or
TransientError here.
"""
