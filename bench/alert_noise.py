"""Alert noise on one simulated day. Run: `.venv/bin/python bench/alert_noise.py [--seed 1]
[--events-per-day 2000] [--epoch 2026-11-28T00:00:00Z|now] [--window-hours 5] [--groups]`.

Starts its own Azurite, cosmosdb-server (in memory) and tenant simulator on free loopback ports. The
simulator holds one day of activity that has just ended, as under `make run` (same defaults: seed 1,
2,000 events per simulated day, of which those already published are collected). The app runs in
process with `make run`'s settings (local.settings.json.example: every source, DLP, enrichment, the
probe, ALERT_TIMEZONE=UTC) and the default rule pack: one poll (the probe timer's poller) hands the day
off as raw pages to the ingest queue; the queues are then drained here, in order, with the services the
queue workers call (ingest_page: the ingest service, its alert messages onto the alerts queue;
evaluate_alerts: the alert service). Notify messages are counted, not delivered (so an alert's still
undelivered notifications are queued again whenever it absorbs a match, as in the app).

Settings already in the environment win (ALERT_DEDUPE_MINUTES=300 ... measures another window), except
the services, the Microsoft endpoints, the alert channels, the tenant and the clock: this run's own.

The epoch (the start of the simulated day) is fixed so the count is the same on every run. Under `make
run` it is "now minus one day", so which events fall outside business hours (08:00-18:00 Mon-Fri UTC)
depends on the hour and weekday `make run` was started at; `--epoch now` does the same here. The default
is a Saturday: every privileged change is then after hours, which reproduces the day of issue 17
(general.privileged-activity-after-hours: 255 matches, 182 alerts there). A weekday shows the other case.

Prints, per rule: the matches (rows of the match ledger: one per rule, group and event), the alerts
opened (the alerts container), the distinct groups (actors) those alerts are for, and the most alerts
one (rule, group) opened within any window of `--window-hours` (by the alerts' first_seen, event time);
then the totals. The last line is one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.host.config import load_local_settings
from devtools.services import PROJECT_ROOT, LocalServices, ServicePorts
from devtools.simulator import DEFAULT_TENANT_ID, SimulatorConfig, TenantSimulator
from devtools.simulator.config import SIM_DAY_SECONDS

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueMessage

MAKE_RUN_SETTINGS = PROJECT_ROOT / "local.settings.json.example"
MAKE_RUN_SIMULATOR = "http://127.0.0.1:7072"  # where local.settings.json.example expects the simulator
# Midnight UTC, so the simulator's busy hours are UTC's working day; a Saturday, as issue 17's day was.
DEFAULT_EPOCH = "2026-11-28T00:00:00Z"
DEFAULT_SEED = SimulatorConfig.seed  # `make run`'s simulator config leaves both at their defaults
DEFAULT_EVENTS_PER_DAY = SimulatorConfig.events_per_day
BATCH = 32  # messages per receive: the Storage queue maximum
# Settings this run always owns: the local services, the simulator, the tenant and the shared clock.
OWNED_SETTINGS = (
    "AzureWebJobsStorage",
    "COSMOS_ENDPOINT",
    "COSMOS_KEY",
    "COSMOS_CA_CERT_PATH",
    "COSMOS_DATABASE",
    "AOC_LOCAL_SETTINGS_FILE",
    "M365_TENANT_ID",
    "M365_AUTHORITY_HOST",
    "GRAPH_BASE_URL",
    "MANAGEMENT_BASE_URL",
    "DEVOPS_BASE_URL",
    "ALERT_CHANNELS",
    "AOC_CLOCK_EPOCH",
    "AOC_CLOCK_SPEED",
    "AOC_CLOCK_STARTED_AT",
)


# -- figures (pure) -----------------------------------------------------------------------------------


def max_in_window(times: Iterable[dt.datetime], window: dt.timedelta) -> int:
    """The most of `times` that lie in one half-open window [t, t + window): alerts exactly `window`
    apart are in different windows, so one alert per group per `window` gives 1."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class RuleNoise:
    rule_id: str
    matches: int = 0
    matched_groups: int = 0
    alerts: int = 0
    groups: int = 0  # distinct group keys (actors) among the rule's alerts
    max_per_group_in_window: int = 0


@dataclass
class NoiseReport:
    window: dt.timedelta
    rules: list[RuleNoise] = field(default_factory=list)

    @property
    def matches(self) -> int:
        return sum(r.matches for r in self.rules)

    @property
    def alerts(self) -> int:
        return sum(r.alerts for r in self.rules)

    @property
    def groups(self) -> int:
        return sum(r.groups for r in self.rules)

    @property
    def max_per_group_in_window(self) -> int:
        return max((r.max_per_group_in_window for r in self.rules), default=0)


def summarize(
    alerts: Sequence[Mapping[str, Any]], matches: Mapping[str, Mapping[str, int]], window: dt.timedelta
) -> NoiseReport:
    """Per rule, from the alert documents (rule_id, group_key, first_seen) and the matches per rule and
    group (`matches[rule][group]`, any stable group label); rules sorted by alerts, then matches."""
    opened: dict[str, dict[str, list[dt.datetime]]] = defaultdict(lambda: defaultdict(list))
    for alert in alerts:
        first_seen = dt.datetime.fromisoformat(str(alert["first_seen"]).replace("Z", "+00:00"))
        opened[str(alert["rule_id"])][str(alert.get("group_key") or "")].append(first_seen)
    rules = []
    for rule_id in set(opened) | set(matches):
        by_group = opened.get(rule_id, {})
        rules.append(
            RuleNoise(
                rule_id=rule_id,
                matches=sum(matches.get(rule_id, {}).values()),
                matched_groups=len(matches.get(rule_id, {})),
                alerts=sum(len(times) for times in by_group.values()),
                groups=len(by_group),
                max_per_group_in_window=max(
                    (max_in_window(times, window) for times in by_group.values()), default=0
                ),
            )
        )
    rules.sort(key=lambda r: (-r.alerts, -r.matches, r.rule_id))
    return NoiseReport(window=window, rules=rules)


def table(report: NoiseReport) -> str:
    hours = f"{report.window.total_seconds() / 3600:g}h"
    header = ("rule", "matches", "alerts", "groups", f"max/group/{hours}", "matched groups")
    rows = [
        (r.rule_id, r.matches, r.alerts, r.groups, r.max_per_group_in_window, r.matched_groups)
        for r in report.rules
    ]
    totals = (
        "total",
        report.matches,
        report.alerts,
        report.groups,
        report.max_per_group_in_window,
        sum(r.matched_groups for r in report.rules),
    )
    width = max([len(header[0]), *(len(r[0]) for r in rows)])
    numbers = [len(h) for h in header[1:]]

    def line(values: Sequence[Any]) -> str:
        cells = [str(values[0]).ljust(width)]
        cells += [str(v).rjust(w) for v, w in zip(values[1:], numbers, strict=True)]
        return "  ".join(cells)

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(r) for r in rows), rule, line(totals)])


# -- the simulated day through the app -------------------------------------------------------------


def parse_epoch(text: str, now: float) -> dt.datetime:
    if text == "now":
        return dt.datetime.fromtimestamp(now - SIM_DAY_SECONDS, dt.UTC)  # as devtools/run.py does
    try:
        epoch = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"--epoch {text}: not an ISO-8601 time such as {DEFAULT_EPOCH}") from None
    if epoch.tzinfo is None:
        raise SystemExit(f"--epoch {text}: give a time zone (Z for UTC)")
    return epoch.astimezone(dt.UTC)


def app_environment(services: LocalServices, simulator: TenantSimulator, state: Path) -> dict[str, str]:
    """`make run`'s settings pointed at this run's services and simulator, on the simulator's clock."""
    from shared.platform.clock import utc_iso

    config = simulator.config
    settings = {
        name: value.replace(MAKE_RUN_SIMULATOR, simulator.base_url)
        for name, value in load_local_settings(MAKE_RUN_SETTINGS).values.items()
    }
    environment = {name: value for name, value in settings.items() if name not in os.environ}
    environment.update({name: settings[name] for name in OWNED_SETTINGS if name in settings})
    environment.update(services.app_environment())
    environment.update(
        {
            "AOC_LOCAL_SETTINGS_FILE": str(state / "absent.json"),
            "M365_TENANT_ID": config.tenant_id,
            "AOC_CLOCK_EPOCH": utc_iso(config.epoch),
            "AOC_CLOCK_SPEED": str(config.speed),
            "AOC_CLOCK_STARTED_AT": repr(config.started_at_unix),
        }
    )
    return environment


@dataclass
class DayRun:
    records: int = 0  # raw records the poll handed off
    stored: int = 0
    new: int = 0
    quarantined: int = 0
    ingest_messages: int = 0
    alert_messages: int = 0
    evaluated: int = 0
    matches: int = 0  # as the alert service counted them, batch by batch
    opened: int = 0
    notify_messages: int = 0  # an undelivered notification is queued again each time its alert changes
    failed_sources: list[str] = field(default_factory=list)


def drain(queue: QueueClient) -> list[QueueMessage]:
    """Every message in the queue, each invisible for long enough to be processed and deleted."""
    messages: list[QueueMessage] = []
    while batch := list(queue.receive_messages(max_messages=BATCH, visibility_timeout=600)):
        messages.extend(batch)
    return messages


def run_day() -> DayRun:
    """One poll, then the ingest and alerts queues drained by the queue workers' services.

    The poll hands its pages off from one thread per source, so they reach the queue in no fixed order;
    the count depends a little on that order (an alert absorbs later matches within the dedupe window of
    its span, but a match that arrives in another batch finds only the group's latest alert, or one of the
    same 15-minute bucket). Pages are therefore ingested in blob-name order (source, then page), and
    each page's alert messages are evaluated in the order the ingest service wrote them, before the next
    page: one fixed order, the same on every run.
    """
    from shared.app.runtime import alert_service, ingest_service, poller
    from shared.ingestion.messages import AlertWorkMessage, IngestMessage
    from shared.platform.clients import get_clients
    from shared.platform.resources import Queues

    day = DayRun()
    poll = poller().run()
    day.records = sum(s.records for s in poll.sources)
    day.failed_sources = [f"{s.source}: {s.error}" for s in poll.failed]
    for source in poll.sources:
        print(f"  poll {source.source}: {source.records} records in {source.pages} pages")

    clients = get_clients()
    ingest_queue, alerts_queue = clients.queue(Queues.INGEST), clients.queue(Queues.ALERTS)
    pages = [(IngestMessage.model_validate_json(m.content), m) for m in drain(ingest_queue)]
    for page, queued in sorted(pages, key=lambda item: item[0].blob):
        # ingest_page: one archived page; its alert messages go onto the alerts queue (the output binding).
        report = ingest_service().process(page)
        for text in report.alert_messages:
            alerts_queue.send_message(text)
        ingest_queue.delete_message(queued)
        day.ingest_messages += 1
        day.stored += report.stored
        day.new += report.new
        day.quarantined += report.quarantined
        # evaluate_alerts: the stored events of one message each, against the rules in force.
        written = {text: n for n, text in enumerate(report.alert_messages)}
        work = sorted(drain(alerts_queue), key=lambda m: written.get(m.content, len(written)))
        for message in work:
            evaluated = alert_service().process(AlertWorkMessage.model_validate_json(message.content))
            alerts_queue.delete_message(message)
            day.alert_messages += 1
            day.evaluated += evaluated.events
            day.matches += evaluated.matches
            day.opened += len(evaluated.created)
            day.notify_messages += len(evaluated.notify_messages)
    left = len(drain(ingest_queue)) + len(drain(alerts_queue))
    if left:
        raise SystemExit(f"{left} messages appeared on the ingest and alerts queues after the poll's")
    return day


def read_alerts(tenant_id: str) -> list[dict[str, Any]]:
    from shared.platform.clients import get_clients
    from shared.platform.resources import CosmosContainers

    container = get_clients().cosmos_container(CosmosContainers.ALERTS.name)
    return list(
        container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'alert'",
            parameters=[{"name": "@pk", "value": tenant_id}],
            partition_key=tenant_id,
        )
    )


def read_ledger(tenant_id: str) -> dict[str, dict[str, int]]:
    """Matches per rule and group from the match ledger: its partition is "tenant|rule|group digest"."""
    from shared.alerts.ledger import ACTIVE_ALERT_ROW
    from shared.platform.clients import get_clients
    from shared.platform.resources import Tables

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for entity in get_clients().table(Tables.ALERT_MATCHES).list_entities(select=["PartitionKey", "RowKey"]):
        if entity["RowKey"] == ACTIVE_ALERT_ROW:
            continue
        tenant, rule_id, group = str(entity["PartitionKey"]).split("|", 2)
        if tenant == tenant_id:
            counts[rule_id][group] += 1
    return {rule_id: dict(groups) for rule_id, groups in counts.items()}


def print_groups(alerts: Sequence[Mapping[str, Any]], rule_ids: Iterable[str]) -> None:
    """Per (rule, group): the alerts' first_seen and occurrences, in event time."""
    for rule_id in rule_ids:
        by_group: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for alert in alerts:
            if alert["rule_id"] == rule_id:
                by_group[str(alert.get("group_key") or "")].append(alert)
        for group, documents in sorted(by_group.items(), key=lambda item: -len(item[1])):
            spans = ", ".join(
                f"{a['first_seen'][11:16]}-{a['last_seen'][11:16]} x{a['occurrences']}"
                for a in sorted(documents, key=lambda a: str(a["first_seen"]))
            )
            print(f"  {rule_id} [{group or 'no group'}] {len(documents)} alerts: {spans}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"simulator seed ({DEFAULT_SEED})")
    parser.add_argument(
        "--events-per-day",
        type=int,
        default=DEFAULT_EVENTS_PER_DAY,
        help=f"simulated events per day ({DEFAULT_EVENTS_PER_DAY:,}, as `make run`)",
    )
    parser.add_argument(
        "--epoch",
        default=DEFAULT_EPOCH,
        help=f"start of the simulated day, ISO-8601 with a zone, or `now` for `make run`'s ({DEFAULT_EPOCH})",
    )
    parser.add_argument("--window-hours", type=float, default=5.0, help="the grouping window counted (5)")
    parser.add_argument("--groups", action="store_true", help="also list every rule's alerts per group")
    args = parser.parse_args()
    if args.events_per_day < 0 or args.window_hours <= 0:
        parser.error("--events-per-day must be >= 0 and --window-hours > 0")

    started = time.perf_counter()
    parse_epoch(args.epoch, time.time())  # a bad --epoch fails before anything starts
    state = Path(tempfile.mkdtemp(prefix="aoc-bench-alert-noise-"))
    services = LocalServices(ports=ServicePorts.free(), state_dir=state, in_memory=True)
    services.start()
    simulator: TenantSimulator | None = None
    try:
        # The shared clock reads the end of the simulated day when the poll starts, a few seconds from
        # here (records published in that second are the only ones whose visibility could vary).
        now = time.time()
        config = SimulatorConfig(
            tenant_id=DEFAULT_TENANT_ID,
            seed=args.seed,
            events_per_day=args.events_per_day,
            epoch=parse_epoch(args.epoch, now),
            speed=1.0,
            started_at_unix=now - SIM_DAY_SECONDS,
        )
        simulator = TenantSimulator(config).start()
        os.environ.update(app_environment(services, simulator, state))
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients

        bootstrap(get_clients())
        from shared.platform.settings import get_settings

        s = get_settings()
        print(
            f"simulated day from {config.epoch:%a %Y-%m-%d %H:%M} UTC, seed {config.seed}, "
            f"{config.events_per_day:,} events per day; business hours {s.alert_business_hours} "
            f"{s.alert_business_days} {s.alert_timezone}; dedupe {s.alert_dedupe_minutes:g} minutes"
        )
        pipeline_started = time.perf_counter()
        day = run_day()
        pipeline_seconds = time.perf_counter() - pipeline_started
        if day.failed_sources:
            raise SystemExit(f"sources failed: {day.failed_sources}")
        print(
            f"poll handed off {day.records} records; ingest: {day.ingest_messages} pages, {day.stored} "
            f"events stored ({day.new} new, {day.quarantined} quarantined); alerts: {day.alert_messages} "
            f"messages, {day.evaluated} events evaluated, {day.matches} matches, {day.opened} alerts "
            f"opened, {day.notify_messages} notify messages queued ({pipeline_seconds:.1f}s)"
        )

        alerts = read_alerts(config.tenant_id)
        matches = read_ledger(config.tenant_id)
        report = summarize(alerts, matches, dt.timedelta(hours=args.window_hours))
        if len(alerts) != day.opened:
            print(f"note: {len(alerts)} alerts in Cosmos, {day.opened} reported opened by the service")
        print(table(report))
        if args.groups:
            print_groups(alerts, [r.rule_id for r in report.rules if r.alerts])
        seconds = time.perf_counter() - started
        print(f"{seconds:.1f}s in all")
        print(
            json.dumps(
                {
                    "events": day.new,
                    "alerts": report.alerts,
                    "matches": report.matches,
                    "alerts_by_rule": {r.rule_id: r.alerts for r in report.rules if r.alerts},
                    "matches_by_rule": {r.rule_id: r.matches for r in report.rules},
                    "max_alerts_per_group_per_window": {
                        r.rule_id: r.max_per_group_in_window for r in report.rules if r.alerts
                    },
                    f"max_alerts_per_group_per_{args.window_hours:g}h": report.max_per_group_in_window,
                    "notify_messages": day.notify_messages,
                    "seed": config.seed,
                    "events_per_day": config.events_per_day,
                    "epoch": config.epoch.isoformat().replace("+00:00", "Z"),
                    "seconds": round(seconds, 1),
                }
            )
        )
    finally:
        if simulator is not None:
            simulator.stop()
        services.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
