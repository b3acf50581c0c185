"""Timer and queue functions of service principal governance: discovery, evaluation, notes updates."""

from governance_worker.functions import bp

__all__ = ["bp"]
