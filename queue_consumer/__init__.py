"""Queue functions that run the Azure DevOps backup pipeline."""

from queue_consumer.functions import bp

__all__ = ["bp"]
