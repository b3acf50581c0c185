"""The HTTP API: authentication, input models, queries and problem responses."""
