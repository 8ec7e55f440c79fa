"""The REST API (FastAPI). Served by Mangum in Lambda and by uvicorn locally."""
