from __future__ import annotations

from fastapi import APIRouter

from ferry import __version__
from ferry.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> Health:
    """Liveness; needs no token."""
    return Health(version=__version__)
