"""The timer that refreshes the activity datasets (issue 19); off unless switched on."""

from datasets_timer.functions import bp

__all__ = ["bp"]
