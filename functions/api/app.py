"""API Gateway (HTTP API) → FastAPI through Mangum."""

from mangum import Mangum

from ferry.api.app import create_app

handler = Mangum(create_app(), lifespan="off")
