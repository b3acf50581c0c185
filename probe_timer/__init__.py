"""Timer functions that poll the audit APIs."""

from probe_timer.functions import bp

__all__ = ["bp"]
