"""Timer functions that poll the audit APIs (ingestion issue)."""

import azure.functions as func

bp = func.Blueprint()
