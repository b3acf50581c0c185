"""The dataset sources: which queries are exported as TSV datasets, how often, over which window.

`shared/datasets/sources.yaml` ships with the app; a blob `config/sources.yaml` replaces it whole (like
`config/rules.yaml` for the rules), so a source is added or changed without a deploy. A file is validated
whole when it loads and refused with one message per problem, each naming the source (its position and,
when it has one, its id) and the field:

    sources[2] (id signin_failures).refresh_interval_seconds: Input should be greater than or equal to 60

Format (version 1):

    version: 1
    sources:
      - id: signin_failures               # [a-z][a-z0-9_]{0,62}: names the lock and metadata blobs
        name: Sign-in failures            # 1..120 characters, shown by the console
        enabled: true                     # default true
        kind: log_analytics               # log_analytics (KQL) | events (this app's stored events)
        refresh_interval_seconds: 300     # 60..86400: a refresh sooner than this is throttled (204)
        query_time_window_hours: 24       # 1..720: the dataset keeps rows whose time_column is this recent
        incremental: true                 # after the first run, only rows ingested since the watermark
        incremental_overlap_minutes: 10   # 0..1440: re-read this margin before the watermark (late rows)
        output_filename: signin-failures.tsv   # unique: the blob's name in `datasets`
        columns: [TimeGenerated, ...]     # 1..64 unique names: the TSV's columns, in this order
        time_column: TimeGenerated        # one of columns (default TimeGenerated): what expiry keeps rows by
        query: |                          # log_analytics: KQL; events: the name of a built-in events dataset
          SigninLogs | where TimeGenerated > ago({time_window}) ...

A log_analytics query holds `{time_window}`, replaced by a KQL timespan literal of the window (`24h`), and,
when the source is incremental, sets `IngestionTime = ingestion_time()` before any project or summarize
(the runner filters on it and the watermark advances on it; it is written to the TSV only when it is one
of the columns). The check of that is textual: it finds the assignment and looks at the pipe operators
around it; the query service is the final judge of the KQL itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from shared.platform.clock import Clock
from shared.platform.ids import DATASET_SOURCE_ID
from shared.platform.yaml_bounded import load_yaml_bounded

logger = logging.getLogger(__name__)

DEFAULT_SOURCES_FILE = Path(__file__).with_name("sources.yaml")
SOURCES_BLOB = "sources.yaml"  # in the `config` container
MAX_SOURCES = 50
MAX_QUERY_LENGTH = 20_000
TIME_WINDOW_PLACEHOLDER = "{time_window}"
INGESTION_TIME_COLUMN = "IngestionTime"

# The built-in datasets an `events` source can name (shared.datasets.events_runner builds them).
EVENT_DATASETS: tuple[str, ...] = ("signin_failures",)

SourceKind = Literal["log_analytics", "events"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("log_analytics", "events")

OUTPUT_FILENAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,80}\.tsv")
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

SourceId = Annotated[str, StringConstraints(pattern=f"^{DATASET_SOURCE_ID.pattern}$")]
ColumnName = Annotated[str, StringConstraints(pattern=f"^{COLUMN_NAME.pattern}$")]

_COMMENT = re.compile(r"(?m)(^|\s)//.*$")
_INGESTION_ASSIGNMENT = re.compile(r"\bIngestionTime\s*=\s*ingestion_time\s*\(\s*\)")
_INGESTION_WORD = re.compile(r"\bIngestionTime\b")
# Tabular operators after which only the columns they name remain.
_NARROWING = ("project", "project-keep", "summarize", "distinct", "count", "make-series", "evaluate")


class SourceConfigError(ValueError):
    """A sources file that does not validate; `problems` lists every problem, one per line of the message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def timespan_literal(length: dt.timedelta) -> str:
    """A KQL timespan literal of `length`: whole hours `24h` (`168h`), else `90m`, `45s` or `1500ms`."""
    milliseconds = round(length.total_seconds() * 1000)
    if milliseconds <= 0:
        raise ValueError("a time window is positive")
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def _operator(segment: str) -> str:
    words = segment.strip().split(None, 1)
    return words[0] if words else ""


def _ingestion_time_problem(query: str) -> str | None:
    """Why an incremental KQL query does not carry IngestionTime from ingestion_time() to its result."""
    text = _COMMENT.sub(r"\1", query)
    match = _INGESTION_ASSIGNMENT.search(text)
    if match is None:
        return "an incremental query must set IngestionTime = ingestion_time() (the watermark advances on it)"
    before = text[: match.start()].split("|")
    if any(_operator(segment) in _NARROWING for segment in before[:-1]):
        return "IngestionTime = ingestion_time() must come before any project or summarize"
    for segment in text[match.end() :].split("|")[1:]:
        operator = _operator(segment)
        if operator == "project-away" and _INGESTION_WORD.search(segment):
            return "a project-away after IngestionTime = ingestion_time() drops IngestionTime"
        if operator in _NARROWING and not (_INGESTION_WORD.search(segment) or "*" in segment):
            return f"a {operator} after IngestionTime = ingestion_time() must keep IngestionTime"
    return None


class DatasetSource(BaseModel):
    """One dataset source. Fields are validated in this order, so a check can see the fields above it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SourceId
    name: str = Field(min_length=1, max_length=120)
    enabled: bool = True
    kind: SourceKind
    refresh_interval_seconds: int = Field(default=300, ge=60, le=86_400)
    query_time_window_hours: int = Field(default=24, ge=1, le=720)
    incremental: bool = True
    incremental_overlap_minutes: int = Field(default=10, ge=0, le=1440)
    output_filename: str
    columns: list[ColumnName] = Field(min_length=1, max_length=64)
    time_column: str = "TimeGenerated"
    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        if not value.isprintable() or value != value.strip():
            raise ValueError("a name is printable, without blanks at either end")
        return value

    @field_validator("output_filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        if OUTPUT_FILENAME.fullmatch(value) is None:
            raise ValueError("must match [a-z0-9][a-z0-9._-]{0,80}.tsv, e.g. signin-failures.tsv")
        return value

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, value: list[str]) -> list[str]:
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"columns are named once each; repeated: {', '.join(repeated)}")
        return value

    @field_validator("time_column")
    @classmethod
    def _time_column_is_a_column(cls, value: str, info: ValidationInfo) -> str:
        columns = info.data.get("columns")
        if columns is not None and value not in columns:
            raise ValueError(f"{value!r} is not one of the columns")
        return value

    @field_validator("query")
    @classmethod
    def _query_fits_the_kind(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind == "events":
            name = value.strip()
            if name not in EVENT_DATASETS:
                raise ValueError(f"an events source names a built-in dataset ({', '.join(EVENT_DATASETS)})")
            return name
        if kind == "log_analytics":
            if TIME_WINDOW_PLACEHOLDER not in value:
                raise ValueError(f"a log_analytics query holds the {TIME_WINDOW_PLACEHOLDER} placeholder")
            if info.data.get("incremental", True):
                problem = _ingestion_time_problem(value)
                if problem:
                    raise ValueError(problem)
        return value

    @property
    def query_hash(self) -> str:
        """sha256 of the query text and the columns: a change means the next run covers the full window."""
        digest = hashlib.sha256(self.query.encode("utf-8"))
        digest.update(b"\x00" + "\t".join(self.columns).encode("utf-8"))
        return digest.hexdigest()

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(hours=self.query_time_window_hours)

    @property
    def overlap(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.incremental_overlap_minutes)

    def render_query(self, window_length: dt.timedelta | None = None) -> str:
        """The KQL with `{time_window}` replaced by a timespan literal (the source's window by default)."""
        return self.query.replace(TIME_WINDOW_PLACEHOLDER, timespan_literal(window_length or self.window))


@dataclass(frozen=True)
class SourceSet:
    """The sources of one file, in file order. `version` is a sha256 prefix of the file's text."""

    sources: tuple[DatasetSource, ...]
    origin: str
    version: str

    def __iter__(self) -> Iterator[DatasetSource]:
        return iter(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, source_id: str) -> DatasetSource | None:
        return next((s for s in self.sources if s.id == source_id), None)

    def enabled(self) -> tuple[DatasetSource, ...]:
        return tuple(s for s in self.sources if s.enabled)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _label(index: int, entry: object) -> str:
    source_id = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(source_id, str) and source_id and len(source_id) <= 80 and source_id.isprintable():
        return f"sources[{index}] (id {source_id})"
    return f"sources[{index}]"


def parse_sources(document: Any, *, origin: str = "memory", version: str = "") -> SourceSet:
    """A whole sources document (already parsed YAML). Every source is checked; all problems together."""
    if not isinstance(document, dict):
        raise SourceConfigError([f"{origin}: the sources file is a mapping with 'sources' (and 'version')"])
    unknown = sorted(str(key) for key in document if key not in ("version", "sources"))
    problems: list[str] = []
    if unknown:
        problems.append(f"unknown top-level key(s): {', '.join(unknown)}")
    if document.get("version", 1) != 1:
        problems.append("version: only version 1 is known")
    raw = document.get("sources")
    if not isinstance(raw, list) or not raw:
        raise SourceConfigError([*problems, "sources: must be a non-empty list"])
    if len(raw) > MAX_SOURCES:
        raise SourceConfigError([*problems, f"sources: at most {MAX_SOURCES} sources"])
    sources: list[DatasetSource] = []
    for index, entry in enumerate(raw):
        label = _label(index, entry)
        if not isinstance(entry, dict):
            problems.append(f"{label}: must be a mapping with id, name, kind, ...")
            continue
        try:
            sources.append(DatasetSource.model_validate(entry))
        except ValidationError as exc:
            for error in exc.errors():
                message = f"{label}{_location(tuple(error['loc']))}: {_message(error)}"
                if message not in problems:
                    problems.append(message)
    for field in ("id", "output_filename"):
        values = [getattr(s, field) for s in sources]
        for value in sorted({v for v in values if values.count(v) > 1}):
            last = max(i for i, e in enumerate(raw) if isinstance(e, dict) and e.get(field) == value)
            problems.append(f"{_label(last, raw[last])}.{field}: {value!r} is used more than once")
    if problems:
        raise SourceConfigError(problems)
    return SourceSet(sources=tuple(sources), origin=origin, version=version)


def load_sources(text: str, origin: str) -> SourceSet:
    """A sources file's text, read within shared.platform.yaml_bounded's bounds and validated;
    SourceConfigError lists every problem."""
    try:
        document: Any = load_yaml_bounded(text)
    except yaml.YAMLError as exc:
        raise SourceConfigError([f"{origin}: not valid YAML: {str(exc)[:500]}"]) from None
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return parse_sources(document, origin=origin, version=version)


def load_default_sources(path: Path = DEFAULT_SOURCES_FILE) -> SourceSet:
    return load_sources(path.read_text(encoding="utf-8"), f"file:{path.name}")


@dataclass(frozen=True)
class SourcesText:
    text: str
    etag: str
    origin: str


SourcesReader = Callable[[], SourcesText | None]


def sources_blob_reader(container: ContainerClient, blob_name: str = SOURCES_BLOB) -> SourcesReader:
    """Reads the override blob (`config/sources.yaml`); None when it does not exist."""

    def read() -> SourcesText | None:
        blob = container.get_blob_client(blob_name)
        try:
            downloader = blob.download_blob(encoding="utf-8")
        except ResourceNotFoundError:
            return None
        return SourcesText(downloader.readall(), str(downloader.properties.etag), f"blob:{blob_name}")

    return read


class SourceCatalog:
    """The sources in force: the shipped file, or the override blob when there is one.

    The blob is checked at most once per `ttl_seconds`, and re-parsed only when its ETag changed. An
    override that does not validate is logged (`last_error`) and the sources in force stay, so a typo in
    the blob never stops the refreshes that worked.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        default_file: Path = DEFAULT_SOURCES_FILE,
        override: SourcesReader | None = None,
        ttl_seconds: float = 60.0,
    ) -> None:
        self._clock = clock
        self._override = override
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        self._lock = threading.Lock()
        self._default = load_default_sources(default_file)
        self._current = self._default
        self._etag: str | None = None
        self._checked_at: dt.datetime | None = None
        self.last_error: str | None = None

    def current(self) -> SourceSet:
        now = self._clock.now()
        with self._lock:
            if self._checked_at is not None and now - self._checked_at < self._ttl:
                return self._current
            self._checked_at = now
            if self._override is None:
                return self._current
            try:
                found = self._override()
            except Exception as exc:  # storage trouble: keep the sources we have
                logger.warning("could not read the sources override (%s); keeping the sources in force", exc)
                return self._current
            if found is None:
                if self._etag is not None:
                    logger.info("sources override removed; using the shipped sources")
                self._current, self._etag, self.last_error = self._default, None, None
                return self._current
            if found.etag == self._etag:
                return self._current
            self._etag = found.etag
            try:
                self._current = load_sources(found.text, found.origin)
                self.last_error = None
                logger.info("loaded %d dataset sources from %s", len(self._current), found.origin)
            except SourceConfigError as exc:
                self.last_error = str(exc)
                logger.error("sources override %s refused, keeping those in force: %s", found.origin, exc)
            return self._current

    def invalidate(self) -> None:
        """Check the override on the next call."""
        with self._lock:
            self._checked_at = None
