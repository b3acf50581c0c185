"""Queue functions that evaluate alert rules and notify (alerting issue)."""

import azure.functions as func

bp = func.Blueprint()
