"""AOC Functions: wiring only. One Blueprint per folder."""

import azure.functions as func

from alert_worker import bp as alert_worker_bp
from datasets_timer import bp as datasets_timer_bp
from governance_worker import bp as governance_worker_bp
from ingest_worker import bp as ingest_worker_bp
from probe_timer import bp as probe_timer_bp
from query_api import bp as query_api_bp
from queue_consumer import bp as queue_consumer_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    probe_timer_bp,
    ingest_worker_bp,
    alert_worker_bp,
    governance_worker_bp,
    datasets_timer_bp,  # refresh_datasets is off unless AzureWebJobs.refresh_datasets.Disabled is false
    queue_consumer_bp,
    query_api_bp,
):
    app.register_functions(blueprint)
