"""The whole simulated day, generated up front from the seed.

Each record is a small `Record`: its native id, event time, availability time, template and a
per-record seed. The JSON is rendered on demand (devtools.simulator.render). Office 365 records are
grouped into content blobs whose contentCreated is the availability time of their records, so blobs
arrive late and out of order relative to event time.

Scripted bursts (`Tenant.add_burst`) append Graph records later, and so do the directoryAudits of
changes to applications and service principals (`Tenant.add_directory_audits`, whose records carry
their JSON instead of a template). Every record carries the tenant
revision that added it (0 for the generated day); a Graph listing is a snapshot of (sim time,
revision), so records added after a listing started never show up in its later pages.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from devtools.simulator.config import SIM_DAY_SECONDS, SimulatorConfig
from devtools.simulator.directory import Directory, build_directory, guid
from devtools.simulator.render import (
    BURST_KINDS,
    ENTRA_AUDIT,
    ENTRA_SIGNIN,
    INTUNE_AUDIT,
    RenderContext,
    day_templates,
    template_index,
)
from devtools.simulator.timefmt import US_PER_SECOND, from_us, graph_time, iso, to_us

O365 = "o365_management"
GRAPH_SOURCES = (ENTRA_AUDIT, ENTRA_SIGNIN, INTUNE_AUDIT)
SOURCES = (*GRAPH_SOURCES, O365)
SOURCE_SHARES: tuple[tuple[str, float], ...] = (
    (ENTRA_AUDIT, 0.25),
    (ENTRA_SIGNIN, 0.30),
    (INTUNE_AUDIT, 0.10),
    (O365, 0.35),
)
CONTENT_TYPES = (
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
)
# Shares within the Office 365 35 %: DLP.All gets only a few records.
CONTENT_TYPE_SHARES: tuple[tuple[str, float], ...] = (
    ("Audit.AzureActiveDirectory", 0.24),
    ("Audit.Exchange", 0.22),
    ("Audit.SharePoint", 0.32),
    ("Audit.General", 0.18),
    ("DLP.All", 0.04),
)
# The ground-truth id prefix per source, as the app builds its event ids.
ID_PREFIX = {
    ENTRA_AUDIT: "entra_audit",
    ENTRA_SIGNIN: "entra_signin",
    INTUNE_AUDIT: "intune_audit",
    O365: "o365",
}

# Relative activity per UTC hour: a working day with a quiet night.
_HOURLY_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 8, 7, 8, 9, 9, 8, 6, 4, 3, 2, 2, 1, 1)
_HOURLY_CUM = [sum(_HOURLY_WEIGHTS[: i + 1]) for i in range(24)]
_HOUR_US = 3600 * US_PER_SECOND
_DAY_US = SIM_DAY_SECONDS * US_PER_SECOND
# Management delays: most content is published within ~90 minutes, the rest up to the maximum.
_MANAGEMENT_TYPICAL_DELAY_SECONDS = 5400.0
_MANAGEMENT_TYPICAL_SHARE = 0.8
# Content blobs: records published within this many sim seconds of each other may share a blob.
_BLOB_SPAN_US = 300 * US_PER_SECOND
_BLOB_MAX_RECORDS = 60
CONTENT_RETENTION_US = 7 * _DAY_US
MAX_BURST_RECORDS = 10_000


@dataclass(slots=True)
class Record:
    index: int
    source: str
    kind: str  # the source for Graph records, the content type for Office 365 records
    native_id: str
    event_us: int
    available_us: int
    seed: int
    template: int
    malformed: bool
    revision: int = 0  # the tenant revision that added the record: 0 for the generated day
    burst: bool = False  # added by a scripted burst: always a successful change
    actor: str | None = None  # a burst's actor UPN, when given
    body: dict[str, Any] | None = None  # a scripted record's wire JSON, served as is (add_directory_audits)

    @property
    def truth_id(self) -> str:
        return f"{ID_PREFIX[self.source]}:{self.native_id}"


@dataclass(slots=True)
class ContentBlob:
    content_type: str
    content_id: str
    created_us: int
    records: list[int] = field(default_factory=list)

    @property
    def expires_us(self) -> int:
        return self.created_us + CONTENT_RETENTION_US


def apportion(total: int, shares: tuple[tuple[str, float], ...]) -> dict[str, int]:
    """Split `total` by `shares` with the largest-remainder method: the counts sum to `total`."""
    weight = sum(s for _, s in shares)
    raw = [(name, total * s / weight) for name, s in shares]
    counts = {name: int(value) for name, value in raw}
    missing = total - sum(counts.values())
    for name, _ in sorted(raw, key=lambda item: item[1] - int(item[1]), reverse=True)[:missing]:
        counts[name] += 1
    return counts


def _native_id(rng: random.Random, source: str) -> str:
    if source == ENTRA_AUDIT:
        letters = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(5))
        return f"Directory_{guid(rng)}_{letters}_{rng.randrange(10**8, 10**9)}"
    return guid(rng)


def _content_id(created_us: int, sequence: int, content_type: str, rng: random.Random) -> str:
    stamp = from_us(created_us).strftime("%Y%m%d%H%M%S%f")[:17] + f"{sequence:06d}"
    lower = content_type.lower().replace(".", "_")
    token = content_type.replace(".", "_")
    return f"{stamp}${stamp}${lower}${token}$na{rng.randrange(1, 100):04d}"


class Tenant:
    """The generated day: records, content blobs, the directory, and the queries the APIs need."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.directory: Directory = build_directory(config.seed)
        self.render_context = RenderContext(tenant_id=config.tenant_id, directory=self.directory)
        self.records: list[Record] = []
        self._graph: dict[str, tuple[list[int], list[Record]]] = {}
        self._blobs: dict[str, tuple[list[int], list[ContentBlob]]] = {}
        self.blob_by_id: dict[str, ContentBlob] = {}
        self._cache: OrderedDict[tuple[Any, ...], list[Record]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._write_lock = threading.Lock()  # serializes bursts; readers never block on it
        self._revision = 0
        self._bursts: list[dict[str, Any]] = []
        self._scripted = 0  # calls of add_directory_audits so far
        self._generate()

    # ------------------------------------------------------------------------------------------
    def _generate(self) -> None:
        config = self.config
        rng = random.Random(config.seed)  # noqa: S311 - deterministic test data, not security
        epoch_us = to_us(config.epoch)
        graph_max = config.graph_max_delay_seconds
        mgmt_max = config.management_max_delay_seconds
        mgmt_typical = min(mgmt_max, _MANAGEMENT_TYPICAL_DELAY_SECONDS)
        per_source = apportion(config.events_per_day, SOURCE_SHARES)
        kinds: list[tuple[str, str, int]] = [(s, s, per_source[s]) for s in GRAPH_SOURCES]
        per_type = apportion(per_source[O365], CONTENT_TYPE_SHARES)
        kinds += [(O365, ct, per_type[ct]) for ct in CONTENT_TYPES]
        hour_total = _HOURLY_CUM[-1]
        malformed_rate = config.malformed_rate
        records = self.records
        rand = rng.random
        for source, kind, count in kinds:
            templates = day_templates(kind)
            cum: list[float] = []
            acc = 0.0
            for weighted in templates:
                acc += weighted.weight
                cum.append(acc)
            last_template = len(templates) - 1
            is_graph = source != O365
            for _ in range(count):
                hour = bisect.bisect_right(_HOURLY_CUM, rand() * hour_total)
                hour = min(hour, 23)
                offset = hour * _HOUR_US + int(rand() * _HOUR_US)
                if is_graph:
                    delay_s = rand() * graph_max
                else:
                    offset -= offset % US_PER_SECOND  # CreationTime has whole seconds
                    delay_s = rand() * (mgmt_typical if rand() < _MANAGEMENT_TYPICAL_SHARE else mgmt_max)
                event_us = epoch_us + min(offset, _DAY_US - 1)
                template = min(bisect.bisect_right(cum, rand() * acc), last_template)
                records.append(
                    Record(
                        index=len(records),
                        source=source,
                        kind=kind,
                        native_id=_native_id(rng, source),
                        event_us=event_us,
                        available_us=event_us + int(delay_s * US_PER_SECOND),
                        seed=rng.getrandbits(63),
                        template=template,
                        malformed=rand() < malformed_rate,
                    )
                )
        for source in GRAPH_SOURCES:
            selected = sorted(
                (r for r in records if r.source == source), key=lambda r: (r.event_us, r.native_id)
            )
            self._graph[source] = ([r.event_us for r in selected], selected)
        self._group_blobs(rng)

    def _group_blobs(self, rng: random.Random) -> None:
        sequence = 0
        max_delay_us = int(self.config.management_max_delay_seconds * US_PER_SECOND)
        for content_type in CONTENT_TYPES:
            pending = sorted(
                (r for r in self.records if r.kind == content_type), key=lambda r: (r.available_us, r.index)
            )
            blobs: list[ContentBlob] = []
            i = 0
            while i < len(pending):
                cap = rng.randint(1, _BLOB_MAX_RECORDS)
                first = pending[i].available_us
                earliest_event = pending[i].event_us
                j = i + 1
                while j < len(pending) and j - i < cap:
                    candidate = pending[j]
                    earliest = min(earliest_event, candidate.event_us)
                    # The blob is published when its last record is: keep every member within its delay.
                    if (
                        candidate.available_us - first > _BLOB_SPAN_US
                        or candidate.available_us - earliest > max_delay_us
                    ):
                        break
                    earliest_event = earliest
                    j += 1
                members = pending[i:j]
                created = members[-1].available_us
                created -= created % 1000  # contentCreated has milliseconds (events have whole seconds)
                sequence += 1
                blob = ContentBlob(content_type, _content_id(created, sequence, content_type, rng), created)
                rng.shuffle(members)  # a blob's records are not in event-time order
                for record in members:
                    record.available_us = created
                    blob.records.append(record.index)
                blobs.append(blob)
                self.blob_by_id[blob.content_id] = blob
                i = j
            blobs.sort(key=lambda b: (b.created_us, b.content_id))
            self._blobs[content_type] = ([b.created_us for b in blobs], blobs)

    # ------------------------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """The number of bursts and scripted audit batches added so far: a Graph snapshot includes
        records up to this revision."""
        return self._revision

    def graph_visible(
        self,
        source: str,
        lo_us: int | None,
        hi_us: int | None,
        snapshot_us: int,
        revision: int | None = None,
    ) -> list[Record]:
        """Records of a Graph source with lo <= event < hi, available at snapshot; newest first.

        Only records added up to `revision` (default: now) count, so a listing's later pages agree
        with its first even when bursts are added in between.
        """
        if revision is None:
            revision = self._revision
        key = ("graph", source, lo_us, hi_us, snapshot_us, revision)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        times, selected = self._graph[source]  # one consistent pair: bursts replace it whole
        start = 0 if lo_us is None else bisect.bisect_left(times, lo_us)
        end = len(times) if hi_us is None else bisect.bisect_left(times, hi_us)
        result = [r for r in selected[start:end] if r.available_us <= snapshot_us and r.revision <= revision]
        result.reverse()
        self._remember(key, result)
        return result

    # ------------------------------------------------------------------------------------------
    def add_burst(
        self,
        kind: str,
        count: int,
        now_us: int,
        *,
        spread_seconds: float = 60.0,
        actor: str | None = None,
        delay_seconds: float = 0.0,
    ) -> dict[str, Any]:
        """Append `count` configuration changes of `kind` with event times spread evenly over
        [now - spread, now], each available at now + delay (sim seconds).

        The records' ids, templates and content follow from the seed and the number of earlier
        bursts; their times from `now_us`. Returns {"ids", "from", "to", ...} (truth ids, ISO times).
        """
        if kind not in BURST_KINDS:
            raise ValueError(f"kind must be one of {', '.join(sorted(BURST_KINDS))}, got {kind!r}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BURST_RECORDS:
            raise ValueError(f"count must be an integer from 1 to {MAX_BURST_RECORDS}, got {count!r}")
        for name, value in (("spread_seconds", spread_seconds), ("delay_seconds", delay_seconds)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if actor is not None and (not isinstance(actor, str) or "@" not in actor.strip("@")):
            raise ValueError(f"actor must be a user principal name, got {actor!r}")
        source, mix = BURST_KINDS[kind]
        indices = [template_index(source, name) for name, _ in mix]
        weights = [weight for _, weight in mix]
        spread_us = int(spread_seconds * US_PER_SECOND)
        available_us = now_us + int(delay_seconds * US_PER_SECOND)
        with self._write_lock:
            number = len(self._bursts) + 1
            revision = self._revision + 1
            rng = random.Random(f"{self.config.seed}:burst:{number}")  # noqa: S311 - deterministic data
            new: list[Record] = []
            for i in range(count):
                back = spread_us * (count - 1 - i) // (count - 1) if count > 1 else 0
                template = rng.choices(indices, weights)[0]
                new.append(
                    Record(
                        index=len(self.records) + i,
                        source=source,
                        kind=source,
                        native_id=_native_id(rng, source),
                        event_us=now_us - back,
                        available_us=available_us,
                        seed=rng.getrandbits(63),
                        template=template,
                        malformed=False,
                        revision=revision,
                        burst=True,
                        actor=actor,
                    )
                )
            _, selected = self._graph[source]
            merged = sorted([*selected, *new], key=lambda r: (r.event_us, r.native_id))
            # Readers take (times, selected) in one read: publish the new pair, then the records,
            # then the revision that makes them part of new snapshots.
            self._graph[source] = ([r.event_us for r in merged], merged)
            self.records.extend(new)
            summary: dict[str, Any] = {
                "burst": number,
                "kind": kind,
                "source": source,
                "count": count,
                "ids": [r.truth_id for r in new],
                "from": iso(now_us - spread_us),
                "to": iso(now_us),
                "available_at": iso(available_us),
                "actor": actor,
                "revision": revision,
            }
            self._bursts.append(summary)
            self._revision = revision
        return {**summary, "ids": list(summary["ids"])}

    def add_directory_audits(self, bodies: list[dict[str, Any]], now_us: int) -> list[str]:
        """Append Entra directoryAudits whose wire JSON is given, for changes the simulator made now
        (devtools/simulator/apps.py): event time and availability `now_us`, so the next listing sees them.

        Each body's `id`, `activityDateTime` and (when None) `correlationId` are filled in here: ids from
        the seed and the number of earlier scripted records, one correlation id per call. The records are
        ground truth like the day's, and take a new tenant revision like a burst. Returns their truth ids.
        """
        if not bodies:
            return []
        with self._write_lock:
            self._scripted += 1
            revision = self._revision + 1
            rng = random.Random(f"{self.config.seed}:scripted-audit:{self._scripted}")  # noqa: S311
            correlation = guid(rng)
            new: list[Record] = []
            for i, body in enumerate(bodies):
                native_id = _native_id(rng, ENTRA_AUDIT)
                body = dict(body)
                body["id"] = native_id
                body["activityDateTime"] = graph_time(now_us)
                if body.get("correlationId") is None:
                    body["correlationId"] = correlation
                new.append(
                    Record(
                        index=len(self.records) + i,
                        source=ENTRA_AUDIT,
                        kind=ENTRA_AUDIT,
                        native_id=native_id,
                        event_us=now_us,
                        available_us=now_us,
                        seed=0,
                        template=0,
                        malformed=False,
                        revision=revision,
                        body=body,
                    )
                )
            _, selected = self._graph[ENTRA_AUDIT]
            merged = sorted([*selected, *new], key=lambda r: (r.event_us, r.native_id))
            self._graph[ENTRA_AUDIT] = ([r.event_us for r in merged], merged)
            self.records.extend(new)
            self._revision = revision
        return [r.truth_id for r in new]

    def bursts(self) -> list[dict[str, Any]]:
        with self._write_lock:
            return [{**b, "ids": list(b["ids"])} for b in self._bursts]

    def blobs_created(self, content_type: str, lo_us: int, hi_us: int, snapshot_us: int) -> list[ContentBlob]:
        """Blobs with lo <= contentCreated < hi that are published at snapshot, oldest first."""
        created, blobs = self._blobs[content_type]
        start = bisect.bisect_left(created, lo_us)
        end = bisect.bisect_left(created, min(hi_us, snapshot_us + 1))
        return blobs[start : max(start, end)]

    def _remember(self, key: tuple[Any, ...], value: list[Record]) -> None:
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > 64:
                self._cache.popitem(last=False)

    # ------------------------------------------------------------------------------------------
    def ground_truth(self) -> dict[str, Any]:
        with self._write_lock:
            records = list(self.records)
            bursts = len(self._bursts)
        ids = sorted(r.truth_id for r in records if not r.malformed)
        by_source = dict.fromkeys(SOURCES, 0)
        by_content_type = dict.fromkeys(CONTENT_TYPES, 0)
        malformed_by_source = dict.fromkeys(SOURCES, 0)
        malformed = 0
        for record in records:
            if record.malformed:
                malformed += 1
                malformed_by_source[record.source] += 1
                continue
            by_source[record.source] += 1
            if record.source == O365:
                by_content_type[record.kind] += 1
        last_available = max((r.available_us for r in records), default=to_us(self.config.epoch))
        return {
            "ids": ids,
            "by_source": by_source,
            "by_content_type": by_content_type,
            "malformed": malformed,
            "malformed_by_source": malformed_by_source,
            "blobs": len(self.blob_by_id),
            "bursts": bursts,
            "all_available_at": from_us(last_available).isoformat().replace("+00:00", "Z"),
        }
