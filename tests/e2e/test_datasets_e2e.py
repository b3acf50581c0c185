"""Activity datasets end to end (issue 19): the local host, the tenant simulator's Log Analytics query API
and Azurite, through POST /api/refresh and GET /api/datasets[/{id}].

Two hosts. One on real time proves the lock and the throttle: ten simultaneous refreshes of one source
run exactly one query (the simulator counts them) and the others answer 202 or 204; within the refresh
interval the answer is 204 and no query runs. The other shares an accelerated clock with the simulator
(360 simulated seconds per real second), so hours pass between refreshes and rows arrive late: three
incremental refreshes end with the simulator's ground truth, no row missing and none twice; a partial
answer is split and completed; when every split stays partial the metadata says so and the published
dataset is kept byte for byte; values with tabs, newlines and non-ASCII read back exactly, and the ETag
answers 304. Waits wait for a simulated instant or a count, never for a duration.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import pytest

from devtools.services import PROJECT_ROOT, LocalServices
from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.datasets.log_analytics import render_value
from shared.datasets.sources import DatasetSource, load_default_sources
from shared.datasets.tsv import decode_tsv
from shared.platform.clients import get_clients
from shared.platform.clock import parse_utc
from shared.platform.resources import BlobContainers
from tests.support.host_process import HostProcess, HttpResult, http_functions_only, http_request, wait_until
from tests.support.simulated_tenant import app_settings_for

WORKSPACE = "9f3c1b2a-4d5e-4f60-8a7b-0c1d2e3f4a5b"
SPEED = 360.0  # simulated seconds per real second, for the accelerated host
TABLES = {"signin_failures": "SigninLogs", "threat_intel_indicators": "ThreatIntelligenceIndicator"}
# Waits only guard against a hang.
HANG_GUARD_SECONDS = 120
SOURCES = {source.id: source for source in load_default_sources()}


def reader_header() -> dict[str, str]:
    document = {"identityProvider": "aad", "userId": f"e2e-{uuid.uuid4().hex[:8]}", "userRoles": ["reader"]}
    document["userDetails"] = "e2e@contoso.com"
    return {"x-ms-client-principal": base64.b64encode(json.dumps(document).encode()).decode()}


READER = reader_header()


def _forget_datasets() -> None:
    """No published file, metadata or lock of the shipped sources from an earlier test in the session."""
    blobs = get_clients().blob_service
    for container in (BlobContainers.DATASETS, BlobContainers.LOCKS):
        client = blobs.get_container_client(container)
        for blob in client.list_blobs():
            if any(blob.name.startswith(s.id) or blob.name == s.output_filename for s in SOURCES.values()):
                client.get_blob_client(blob.name).delete_blob(delete_snapshots="include")


@dataclass
class Stack:
    host: HostProcess
    simulator: TenantSimulator
    tls: ssl.SSLContext  # trusts the local CA that signed the simulator's certificate

    def refresh(self, source_id: str | None = None) -> HttpResult:
        query = f"?source={source_id}" if source_id else ""
        return http_request("POST", f"{self.host.base_url}/api/refresh{query}", None, READER)

    def dataset(self, source_id: str, headers: dict[str, str] | None = None) -> HttpResult:
        return http_request(
            "GET", f"{self.host.base_url}/api/datasets/{source_id}", None, {**READER, **(headers or {})}
        )

    def metadata(self, source_id: str) -> dict[str, Any]:
        listing = http_request("GET", f"{self.host.base_url}/api/datasets", None, READER)
        assert listing.status == 200, listing.body
        item = next(i for i in listing.json()["items"] if i["id"] == source_id)
        assert item["metadata"] is not None, source_id
        return dict(item["metadata"])

    def sim(self, method: str, route: str, document: dict[str, Any] | None = None) -> Any:
        body = json.dumps(document).encode() if document is not None else None
        url = f"{self.simulator.base_url}/_sim/loganalytics/{route}"
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(request, timeout=60, context=self.tls) as response:
            assert response.status == 200
            return json.loads(response.read())

    def queries(self, table: str) -> list[dict[str, Any]]:
        return [
            q for q in self.sim("GET", "queries")["queries"] if q.get("query", "").lstrip().startswith(table)
        ]

    def sim_now(self) -> dt.datetime:
        config = self.simulator.config
        return config.epoch + dt.timedelta(seconds=(time.time() - config.started_at_unix) * config.speed)

    def truth(
        self, source: DatasetSource, end: dt.datetime, ingested_by: dt.datetime | None = None
    ) -> list[tuple[str, ...]]:
        """The table's rows with TimeGenerated in [end - window, end] ingested by `ingested_by` (default
        `end`), as the source's TSV rows. A refresh at `end` holds every row ingested by `end`; a full
        run, not bounded by ingestion time, also those ingested before the service answered it."""
        start = end - source.window
        params = urllib.parse.urlencode({"table": TABLES[source.id], "start": _iso(start), "end": _iso(end)})
        body = self.sim("GET", f"truth?{params}")
        names = [c["name"] for c in body["columns"]]
        ingested = names.index("IngestionTime")
        positions = [names.index(column) for column in source.columns]
        rows = []
        for row in body["rows"]:
            if parse_utc(row[ingested]) <= (ingested_by or end):
                rows.append(tuple(_cell(row[p]) for p in positions))
        return sorted(rows)


def hdr(answer: HttpResult, name: str) -> str | None:
    """A response header, whatever its case on the wire."""
    return next((v for k, v in answer.headers.items() if k.lower() == name.lower()), None)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _cell(value: Any) -> str:
    rendered = render_value(value)
    return "" if rendered is None else rendered


def _rows(answer: HttpResult, source: DatasetSource) -> list[tuple[str, ...]]:
    assert answer.status == 200, answer.body[:300]
    columns, rows = decode_tsv(answer.body)
    assert columns == source.columns
    return sorted(tuple(row) for row in rows)


def _start_stack(
    services: LocalServices,
    app_environment: dict[str, str],
    work_dir: Path,
    config: SimulatorConfig,
    accelerated: bool,
) -> Stack:
    """The simulator over TLS (azure-core sends a bearer token over https only) and a host trusting it."""
    _forget_datasets()
    assert services.certificates is not None
    ca_cert = services.certificates.ca_cert
    bundle = work_dir / "ca-bundle.pem"
    bundle.write_text(Path(certifi.where()).read_text() + "\n" + ca_cert.read_text())
    simulator = TenantSimulator(config, certificates=services.certificates).start()
    settings = {
        **app_environment,
        **app_settings_for(simulator),
        "SSL_CERT_FILE": str(bundle),
        **http_functions_only(),
        "API_AUTH_MODE": "swa",
        "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER": "1",
        "API_CONTINUATION_SECRET": "datasets-e2e-secret-0123456789",
        "PROBE_ENABLED": "false",
        "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE,
        "LOG_ANALYTICS_ENDPOINT": f"{simulator.base_url}/v1",
        "DATASETS_REFRESH_PER_MINUTE": "600",
    }
    if accelerated:
        settings |= {
            "AOC_CLOCK_EPOCH": config.epoch.isoformat(),
            "AOC_CLOCK_SPEED": str(config.speed),
            "AOC_CLOCK_STARTED_AT": str(config.started_at_unix),
        }
    try:
        host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings).start(timeout=60)
    except BaseException:
        simulator.stop()
        raise
    return Stack(host, simulator, ssl.create_default_context(cafile=str(ca_cert)))


@pytest.fixture(scope="module")
def real_time(
    local_services: LocalServices, app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    now = time.time()
    config = SimulatorConfig(
        tenant_id=str(uuid.uuid4()), seed=19, events_per_day=0, epoch=dt.datetime.fromtimestamp(now, dt.UTC),
        started_at_unix=now,
    )  # fmt: skip
    work_dir = tmp_path_factory.mktemp("datasets-real-time")
    stack = _start_stack(local_services, app_environment, work_dir, config, False)
    yield stack
    stack.host.stop()
    stack.simulator.stop()
    _forget_datasets()


@pytest.fixture(scope="module")
def accelerated(
    local_services: LocalServices, app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    started_at = time.time()
    config = SimulatorConfig(
        tenant_id=str(uuid.uuid4()), seed=1919, events_per_day=0,
        epoch=dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC), speed=SPEED, started_at_unix=started_at,
    )  # fmt: skip
    work_dir = tmp_path_factory.mktemp("datasets-accelerated")
    stack = _start_stack(local_services, app_environment, work_dir, config, True)
    yield stack
    stack.host.stop()
    stack.simulator.stop()
    _forget_datasets()


def _assert_complete(stack: Stack, source: DatasetSource, queries: list[dict[str, Any]]) -> None:
    """The dataset holds every row of its window ingested by the last run's end, none twice, and no row
    the service did not hold when it was asked (values compared exactly, as text)."""
    end = max(parse_utc(q["end"]) for q in queries)
    answered_by = max(parse_utc(q["sim_time"]) for q in queries)
    dataset = _rows(stack.dataset(source.id), source)
    assert len(dataset) == len(set(dataset)), "a row twice"
    missing = set(stack.truth(source, end)) - set(dataset)
    unknown = set(dataset) - set(stack.truth(source, end, answered_by))
    assert (sorted(missing), sorted(unknown)) == ([], []), (sorted(missing)[:3], sorted(unknown)[:3])


def _wait_for_sim_time(stack: Stack, instant: dt.datetime) -> None:
    wait_until(lambda: stack.sim_now() >= instant, HANG_GUARD_SECONDS, message=f"simulated time {instant}")


# --- real time: one query for ten simultaneous refreshes; 204 within the interval ----------------


def test_ten_simultaneous_refreshes_run_one_query_and_the_others_answer_202_or_204(real_time: Stack) -> None:
    before = len(real_time.queries("SigninLogs"))
    answers: list[HttpResult] = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def refresh() -> None:
        barrier.wait()
        answer = real_time.refresh("signin_failures")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=refresh) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status for a in answers)
    assert statuses.count(200) == 1, [(a.status, a.body[:200]) for a in answers]
    assert set(statuses) <= {200, 202, 204}, statuses
    assert len(real_time.queries("SigninLogs")) - before == 1
    refreshed = next(a for a in answers if a.status == 200)
    assert hdr(refreshed, "X-Refreshed-Count") == "1"
    assert all(hdr(a, "X-Correlation-ID") for a in answers)
    assert len({hdr(a, "X-Correlation-ID") for a in answers}) == 10  # a new one each
    meta = real_time.metadata("signin_failures")
    assert (meta["status"], meta["partial"]) == ("ok", False)
    assert meta["rows"] == len(_rows(real_time.dataset("signin_failures"), SOURCES["signin_failures"]))


def test_within_the_refresh_interval_the_answer_is_204_and_no_query_runs(real_time: Stack) -> None:
    first = real_time.refresh("signin_failures")
    assert first.status in (200, 204)
    before = len(real_time.queries("SigninLogs"))
    again = real_time.refresh("signin_failures")
    assert (again.status, again.body) == (204, b"")
    assert hdr(again, "X-Refreshed-Count") == "0"
    assert len(real_time.queries("SigninLogs")) == before


# --- accelerated: incremental with late rows, partial answers, the TSV round trip ------------------


def test_three_incremental_refreshes_with_late_rows_end_equal_to_the_ground_truth(accelerated: Stack) -> None:
    source = SOURCES["signin_failures"]
    ends: list[dt.datetime] = []
    for run in range(3):
        if ends:  # an hour and a half later: late rows (one to six hours late) have arrived meanwhile
            _wait_for_sim_time(accelerated, ends[-1] + dt.timedelta(minutes=90))
        answer = accelerated.refresh(source.id)
        assert answer.status == 200, (run, answer.body[:300])
        ends.append(parse_utc(accelerated.queries("SigninLogs")[-1]["end"]))
    queries = accelerated.queries("SigninLogs")
    assert queries[-3]["ingested_after"] is None  # the first run covers the full window
    assert all(q["ingested_after"] is not None for q in queries[-2:])  # then only what was ingested since
    dataset = _rows(accelerated.dataset(source.id), source)
    truth = accelerated.truth(source, ends[-1])
    assert len(dataset) == len(set(dataset)), "a row twice"
    missing, extra = sorted(set(truth) - set(dataset)), sorted(set(dataset) - set(truth))
    assert (missing, extra) == ([], []), (missing[:3], extra[:3])
    # Late rows were caught: rows made before the first run but ingested after it are in the dataset.
    late = accelerated.truth(source, ends[-1])
    first = accelerated.truth(source, ends[0])
    caught = [row for row in late if row not in first and parse_utc(row[0]) <= ends[0]]
    assert caught, "no late row arrived between the runs"
    assert set(caught) <= set(dataset)
    meta = accelerated.metadata(source.id)
    assert (meta["status"], meta["rows"]) == ("ok", len(truth))


def test_a_partial_answer_is_split_and_completed(accelerated: Stack) -> None:
    source = SOURCES["threat_intel_indicators"]
    accelerated.sim("POST", "fault", {"partial_over_seconds": 2 * 86400})  # 168 h: split to 42 h parts
    try:
        answer = accelerated.refresh(source.id)
    finally:
        accelerated.sim("POST", "fault", {"partial_over_seconds": None})
    assert answer.status == 200, answer.body[:300]
    queries = accelerated.queries("ThreatIntelligenceIndicator")
    assert any(q["partial"] for q in queries)
    assert not queries[-1]["partial"]
    meta = accelerated.metadata(source.id)
    assert (meta["status"], meta["partial"]) == ("ok", False)
    assert meta["splits"] >= 2
    _assert_complete(accelerated, source, queries)


def test_when_every_split_stays_partial_the_metadata_says_so_and_the_dataset_is_kept(
    accelerated: Stack,
) -> None:
    source = SOURCES["threat_intel_indicators"]
    before = accelerated.dataset(source.id)
    if before.status != 200:  # run alone: publish a complete dataset first
        assert accelerated.refresh(source.id).status == 200
        before = accelerated.dataset(source.id)
    published = accelerated.metadata(source.id)
    _wait_for_sim_time(accelerated, parse_utc(published["last_refresh_at"]) + dt.timedelta(seconds=960))
    accelerated.sim("POST", "fault", {"partial_over_seconds": 1})  # every span, however small, is cut
    try:
        answer = accelerated.refresh(source.id)
    finally:
        accelerated.sim("POST", "fault", {"partial_over_seconds": None})
    assert answer.status == 503, answer.body[:300]
    problem = json.loads(answer.body)
    assert problem["errors"][0]["field"] == f"source {source.id}"
    assert problem["errors"][0]["message"].startswith("partial")
    meta = accelerated.metadata(source.id)
    assert (meta["status"], meta["partial"]) == ("partial", True)
    assert meta["errors"]
    assert meta["watermark"] == published["watermark"]  # not moved
    assert meta["etag"] == published["etag"]
    after = accelerated.dataset(source.id)
    assert (after.body, hdr(after, "ETag")) == (before.body, hdr(before, "ETag"))


def test_tabs_newlines_and_non_ascii_read_back_exactly_and_the_etag_answers_304(accelerated: Stack) -> None:
    source = SOURCES["signin_failures"]
    answer = accelerated.dataset(source.id)
    if answer.status != 200:  # run alone
        assert accelerated.refresh(source.id).status == 200
        answer = accelerated.dataset(source.id)
    assert hdr(answer, "Content-Type") == "text/tab-separated-values; charset=utf-8"
    rows = _rows(answer, source)
    _assert_complete(accelerated, source, accelerated.queries("SigninLogs"))
    values = [value for row in rows for value in row]
    assert any("\t" in v for v in values), "no value with a tab"
    assert any("\n" in v for v in values), "no value with a newline"
    assert any(not v.isascii() for v in values), "no non-ASCII value"
    etag = hdr(answer, "ETag")
    assert etag is not None
    unchanged = accelerated.dataset(source.id, {"If-None-Match": etag})
    assert (unchanged.status, unchanged.body) == (304, b"")
    assert hdr(unchanged, "ETag") == etag
    modified = hdr(answer, "Last-Modified")
    assert modified is not None
    since = accelerated.dataset(source.id, {"If-Modified-Since": modified})
    assert since.status == 304
