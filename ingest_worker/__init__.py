"""Queue functions that normalize and store audit events."""

from ingest_worker.functions import bp

__all__ = ["bp"]
