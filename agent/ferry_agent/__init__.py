"""The Ferry agent: takes deploy jobs from its queue and runs them with Docker Compose."""

__version__ = "0.1.0"
