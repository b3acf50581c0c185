"""Ingestion: sources, normalization, the raw archive, watermarks and the event store."""
