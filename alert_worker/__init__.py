"""Queue and timer functions that evaluate alert rules and deliver notifications."""

from alert_worker.functions import bp

__all__ = ["bp"]
