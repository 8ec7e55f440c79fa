"""One router per resource."""

from ferry.api import pydantic_v1_detection

# Before any route below is declared: declaring one is when FastAPI would import pydantic.v1.
pydantic_v1_detection.install()
