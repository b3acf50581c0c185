"""Property-based fuzzing of the HTTP API from its own OpenAPI document, through the local host.

schemathesis generates requests for every documented operation (valid and invalid inputs); every
response must not be a 5xx and must conform to the document: status code, content type and body
schema. At least 500 requests are made, bounded in time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.services import PROJECT_ROOT
from shared.ingestion.event_store import EventStore
from shared.platform.clock import utc_iso
from shared.platform.resources import BlobContainers, CosmosContainers
from shared.rules.source import RULES_BLOB
from tests.support.event_corpus import make_events
from tests.support.host_process import FUNCTION_KEY, HostProcess
from tests.support.own_database import own_cosmos_database

MIN_REQUESTS = 500
EXAMPLES_PER_OPERATION = 40
# Runs a real polling cycle against Microsoft's endpoints: proved by its own test, not fuzzed. Likewise
# refreshDatasets, which runs real Log Analytics queries and answers 503 when every source asked for failed
# (here: no workspace is configured): tests/e2e/test_datasets_e2e.py and the hostile-input tables prove it.
NOT_FUZZED = ("runProbe", "refreshDatasets")
REQUESTS: list[int] = []
BASE_URL: list[str] = []


@pytest.fixture(scope="module")
def fuzz_host(
    app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    """A host over a small corpus in a Cosmos database of its own (fuzzed writes touch nothing else)."""
    tenant = str(uuid.uuid4())
    with own_cosmos_database("aoc-fuzz") as (database, clients):
        events = make_events(tenant, 200)
        now = dt.datetime.now(dt.UTC)
        for i, event in enumerate(events):  # recent, so the default 30-day window finds them
            timestamp = utc_iso(now - dt.timedelta(minutes=7 * i + 1))
            event.update(timestamp=timestamp, ingested_at=timestamp, pk=f"{tenant}:{timestamp[:7]}")
        store = EventStore(
            clients.cosmos_container(CosmosContainers.EVENTS.name),
            clients.cosmos_container(CosmosContainers.FACETS.name),
            4,
        )
        store.write_events(events)
        store.update_facets(tenant, events, [], utc_iso(now), shard_key="fuzz")
        store.close()
        settings_ = {
            **app_environment,
            "COSMOS_DATABASE": database,
            "M365_TENANT_ID": tenant,
            "API_CONTINUATION_SECRET": "fuzz-continuation-secret-0123456789",
            "API_EXPORT_MAX_EVENTS": "100",
            "API_BULK_TAG_MAX_EVENTS": "20",
            "PROBE_ENABLED": "false",
        }
        config = clients.blob_service.get_container_client(BlobContainers.CONFIG)
        rules_blob = config.get_blob_client(RULES_BLOB)
        saved_rules = rules_blob.download_blob().readall() if rules_blob.exists() else None
        work_dir: Path = tmp_path_factory.mktemp("fuzz-host")
        host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings_).start(timeout=60)
        try:
            yield host
        finally:
            host.stop()
            # Fuzzed PUT /rules calls may save a rule override in the shared Azurite: put it back.
            if saved_rules is not None:
                rules_blob.upload_blob(saved_rules, overwrite=True)
            elif rules_blob.exists():
                rules_blob.delete_blob()


@pytest.fixture(scope="module")
def api_schema(fuzz_host: HostProcess) -> Any:
    BASE_URL[:] = [fuzz_host.base_url]
    # The caller is authenticated (a function key with every role), so the generated requests reach
    # the handlers' validation; authentication itself has its own tests.
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"generation": {"with-security-parameters": False}, "headers": {"x-functions-key": FUNCTION_KEY}}
    )
    loaded = schemathesis.openapi.from_url(f"{fuzz_host.base_url}/api/openapi.json", config=config)
    return loaded


# The exclusion goes on the lazy schema: one on the fixture's schema is not applied to the parametrization.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(operation_id=list(NOT_FUZZED))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_answers_within_its_documented_contract(case: Any) -> None:
    response = case.call(base_url=BASE_URL[0], headers={"x-functions-key": FUNCTION_KEY}, timeout=30)
    REQUESTS.append(response.status_code)
    case.validate_response(
        response,
        checks=(
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ),
    )


def test_the_fuzzer_made_enough_requests() -> None:
    print(f"\nfuzzed requests: {len(REQUESTS)}, by status: {dict(sorted(Counter(REQUESTS).items()))}")
    assert len(REQUESTS) >= MIN_REQUESTS, f"only {len(REQUESTS)} requests"
    assert not [s for s in REQUESTS if s >= 500]
    assert any(200 <= s < 300 for s in REQUESTS)
    assert any(s == 400 for s in REQUESTS)
