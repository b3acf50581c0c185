"""Queue functions that run the Azure DevOps backup pipeline (change probe issue)."""

import azure.functions as func

bp = func.Blueprint()
