"""Raw audit records (dicts decoded from JSON) -> canonical event documents
(see shared.ingestion.events.Event).

normalize_record returns a plain dict, not an Event: building models costs more than the whole
normalization, and every dict it returns validates with Event.model_validate (the unit tests check it).

Ids are deterministic: "{namespace}:{native id}" with the native id exactly as received; a record without
one gets "{namespace}:h:" + the first 32 hex digits of a sha256 over the source and the record's canonical
JSON (not over normalized fields, so a change of attribution never changes an id).

Rejected (quarantined, counted) rather than stored:
- a record whose native id makes an unsafe storage id (shared.platform.ids.storage_id: a slash or backslash,
  `?`, `#`, `%`, control characters, a blank at either end, over 255 characters). EventStore.write_events
  refuses a page holding such an id, so letting it through would send the whole page to poison;
- a record without a parseable timestamp: stamping it with the ingestion time would put a redelivered
  copy in another month's partition, as a second document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.ingestion.events import RawRef
from shared.ingestion.normalize import entra_audit, entra_signin, intune_audit, o365
from shared.ingestion.normalize._common import NormalizationError, hash_id, parse_timestamp, text
from shared.ingestion.normalize.mappings import Mappings, clear_mappings_cache, load_mappings
from shared.platform.ids import EVENT_ID, UnsafeStorageIdError, storage_id

__all__ = [
    "SOURCES",
    "NormalizationError",
    "clear_mappings_cache",
    "event_id",
    "load_mappings",
    "normalize_record",
    "refresh_summary",
]

SOURCES: tuple[str, ...] = ("entra_audit", "entra_signin", "intune_audit", "o365_management")
UNKNOWN_OPERATION = "Unknown"

_Normalizer = Callable[[dict[str, Any], Mappings], tuple[str | None, dict[str, Any]]]
_NORMALIZERS: dict[str, tuple[str, _Normalizer]] = {
    "entra_audit": (entra_audit.NAMESPACE, entra_audit.normalize),
    "entra_signin": (entra_signin.NAMESPACE, entra_signin.normalize),
    "intune_audit": (intune_audit.NAMESPACE, intune_audit.normalize),
    "o365_management": (o365.NAMESPACE, o365.normalize),
}
_NATIVE_ID_FIELDS = {"entra_audit": "id", "entra_signin": "id", "intune_audit": "id", "o365_management": "Id"}
_INGESTED_AT: dict[str, str] = {}


def _ingested_at(value: str) -> str:
    normalized = _INGESTED_AT.get(value)
    if normalized is None:
        normalized = parse_timestamp(value)
        if normalized is None:
            raise ValueError(f"ingested_at is not an ISO-8601 timestamp: {value!r}")
        if len(_INGESTED_AT) > 1024:
            _INGESTED_AT.clear()
        _INGESTED_AT[value] = normalized
    return normalized


def _native_event_id(namespace: str, native_id: str) -> str:
    """`{namespace}:{native id}`; NormalizationError when that is not a safe storage id."""
    identifier = f"{namespace}:{native_id}"
    if EVENT_ID.fullmatch(identifier) is not None:  # the usual shape, and always safe: skip the full check
        return identifier
    try:
        return storage_id(identifier)
    except UnsafeStorageIdError as exc:
        raise NormalizationError(
            f"the native id {native_id[:100]!r} makes an unsafe event id: {exc}"
        ) from None


def _fields(source: str, record: Any, mappings: Mappings) -> tuple[str, dict[str, Any]]:
    """The id and the source-specific fields; raises NormalizationError."""
    if type(record) is not dict:
        raise NormalizationError(f"record is not a JSON object but {type(record).__name__}")
    try:
        namespace, normalizer = _NORMALIZERS[source]
    except KeyError:
        raise NormalizationError(f"unknown source {source!r}") from None
    try:
        native_id, doc = normalizer(record, mappings)
    except RecursionError:
        raise NormalizationError("record is nested too deeply") from None
    if native_id is not None:
        return _native_event_id(namespace, native_id), doc
    if doc["timestamp"] is None or not doc["operation"]:
        raise NormalizationError("record has no id and no parseable timestamp and operation")
    return hash_id(namespace, source, record), doc


def normalize_record(
    source: str,
    record: dict[str, Any],
    *,
    tenant_id: str,
    ingested_at: str,
    raw_ref: RawRef | dict[str, Any] | None = None,
    keep_raw: bool = False,
) -> dict[str, Any]:
    """Return the Cosmos document: a dict matching Event's fields (Event.model_validate(doc) succeeds)."""
    mappings = load_mappings()
    identifier, doc = _fields(source, record, mappings)
    ingested = _INGESTED_AT.get(ingested_at) or _ingested_at(ingested_at)
    timestamp = doc["timestamp"]
    if timestamp is None:
        raise NormalizationError("record has no parseable timestamp")
    if not doc["operation"]:
        doc["operation"] = UNKNOWN_OPERATION
    doc["id"] = identifier
    doc["pk"] = f"{tenant_id}:{timestamp[:7]}"  # shared.ingestion.events.partition_key, inlined
    doc["tenant_id"] = tenant_id
    doc["source"] = source
    doc["ingested_at"] = ingested
    try:
        doc["summary"] = mappings.summarize(source, doc)
    except RecursionError:  # a modified value nested hundreds deep, named by a {property:...} slot
        raise NormalizationError("record is nested too deeply to summarize") from None
    doc["tags"] = []
    if raw_ref is None:
        doc["raw_ref"] = None
    elif isinstance(raw_ref, RawRef):
        doc["raw_ref"] = {"blob": raw_ref.blob, "line": raw_ref.line}
    else:
        doc["raw_ref"] = {"blob": raw_ref["blob"], "line": raw_ref["line"]}
    doc["raw"] = record if keep_raw else None
    return doc


def event_id(source: str, record: dict[str, Any]) -> str:
    """The id normalize_record gives this record; raises NormalizationError."""
    if type(record) is dict and source in _NORMALIZERS:
        native_id = text(record.get(_NATIVE_ID_FIELDS[source]))
        if native_id is not None:
            return _native_event_id(_NORMALIZERS[source][0], native_id)
    return _fields(source, record, load_mappings())[0]


def refresh_summary(doc: dict[str, Any]) -> None:
    """Render the summary again, after enrichment filled names the record did not carry."""
    doc["summary"] = load_mappings().summarize(doc["source"], doc)
