"""Queue functions that normalize and store audit events (ingestion issue)."""

import azure.functions as func

bp = func.Blueprint()
