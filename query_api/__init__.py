"""HTTP query API for the Static Web App."""

from query_api.routes import bp

__all__ = ["bp"]
