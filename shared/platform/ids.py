"""The grammar of the ids this app makes, and the check every storage call makes on an id.

The azure-cosmos SDK builds a document's address as `dbs/{db}/colls/{coll}/docs/{id}` and
percent-encodes everything in it except `/`; its HTTP stack then resolves `.` and `..` segments. So an
id of `/`, `.` or `..` (or one holding them) addresses the documents feed or the container itself,
not a document. Two layers keep such ids away from storage:

- the API checks every id from a URL or a body against the grammar of ids of that kind (`is_alert_id`,
  `is_event_id`, `is_rule_id`, `is_search_id`) and answers anything else with a 404 (or 400) before any
  storage call;
- `storage_id` refuses, whoever calls it, an id that is not safe as one path segment; the Cosmos
  reads and replaces (shared.alerts.store, shared.ingestion.event_store, the API) and the raw archive's blob
  reads (`storage_blob_name`) go through it.
"""

from __future__ import annotations

import re
import unicodedata

# Alerts: "alert-" + 40 hex digits of a sha256 (shared.alerts.model.alert_fingerprint). The grammar
# admits lower-case letters, digits and '-' after the prefix, up to 80 characters in all.
ALERT_ID = re.compile(r"alert-[a-z0-9][a-z0-9-]{0,73}")
# Events: "{namespace}:{native id}" (shared.ingestion.normalize): the namespace is a source's lower-case name;
# Microsoft's native ids are GUIDs or words of letters, digits, '_' and '-' (Directory_<guid>_X1Y2Z_42);
# records without one get "h:" + 32 hex digits.
EVENT_ID = re.compile(r"[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_-][A-Za-z0-9_:-]{0,199}")
# Rules: 3 to 80 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit.
RULE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{2,79}")
# Comments and alert-update ids: 32 hex digits (uuid4().hex, or a sha256 prefix for an idempotent retry).
COMMENT_ID = re.compile(r"[0-9a-f]{32}")
# An Idempotency-Key header: 1 to 100 printable ASCII characters, no blank at either end.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,98}[\x21-\x7e])?")
# Drift scopes (shared.probe.scopes.DriftScope.name) and backup triggers, "{scope}:{token}": the probe
# makes the token from 24 hex digits of a sha256 (shared.probe.state.trigger_id). Both are Table keys.
SCOPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
TRIGGER_ID = re.compile(r"(?P<scope>[A-Za-z0-9][A-Za-z0-9._-]{0,62}):[A-Za-z0-9_-]{1,64}")
# Notification channels (shared.notify.channels.ChannelConfig.name); part of a DeliveryLog row key.
CHANNEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
# Objects an event names as its actor or a target (GET /api/objects/{id}/history), as the sources send
# their ids: GUIDs, UPNs (a guest's holds '#': ann_fabrikam.com#EXT#@contoso.onmicrosoft.com), Exchange
# and Intune object names (blanks, any script: "Αλέξανδρος Παπαδόπουλος"). 1 to 200 printable characters
# (inner blanks, no other space or control, format or unassigned character), a letter or digit first, no
# blank last, and none of '/', '\', '?', '%' nor U+FFFD: it is one path segment, and never a storage id
# (only ever a query parameter). Ids outside it (SharePoint URLs, Exchange `Name\..` paths) have no
# history page.
MAX_OBJECT_ID_LENGTH = 200
OBJECT_ID_EXCLUDED = frozenset("/\\?%\ufffd")

# Saved searches: "srch-" + 32 hex digits (uuid4().hex, or a sha256 prefix for a create retried with
# the same Idempotency-Key: shared.searches.model.search_id).
SEARCH_ID = re.compile(r"srch-[0-9a-f]{32}")

# Alert suppressions ("suppress similar"): "sup-" + 40 hex digits of a sha256 of tenant, rule and group
# (shared.alerts.suppressions.suppression_id), exactly.
SUPPRESSION_ID = re.compile(r"sup-[0-9a-f]{40}")

# Service principal governance (shared.governance): sha256 prefixes of what each names. Evaluations
# "ev-" + 32 hex digits and activities "act-{kind}-" + 32 (shared.governance.messages); findings "fnd-" + 40
# and exceptions (accepted risks) "exc-" + 40 (shared.governance.records). Each is a Cosmos DB id or a
# Table key, and what an API route takes for one.
EVALUATION_ID = re.compile(r"ev-[0-9a-f]{32}")
GOVERNANCE_ACTIVITY_ID = re.compile(r"act-(?:discovery|evaluation|update)-[0-9a-f]{32}")
FINDING_ID = re.compile(r"fnd-[0-9a-f]{40}")
GOVERNANCE_EXCEPTION_ID = re.compile(r"exc-[0-9a-f]{40}")

# Activity datasets (shared.datasets.sources.DatasetSource.id): a lower-case letter, then up to 62 lower-case
# letters, digits or '_'. It names the source's lock and metadata blobs (`locks/{id}.lock`,
# `locks/{id}-metadata.json`) and is what `POST /api/refresh?source=` takes.
DATASET_SOURCE_ID = re.compile(r"[a-z][a-z0-9_]{0,62}")

# Cosmos DB forbids these in ids; '%' would be read as an escape by a layer that decodes twice.
FORBIDDEN_STORAGE_ID_CHARACTERS = frozenset("/\\?#%")
MAX_STORAGE_ID_LENGTH = 255  # characters; Cosmos DB's own limit is 1,023 bytes
MAX_BLOB_NAME_LENGTH = 1024  # Azure Blob Storage's limit, in characters
BLOB_NAME_SEGMENT = re.compile(r"[A-Za-z0-9_.=-]{1,255}")


class UnsafeStorageIdError(ValueError):
    """An id (or blob name) that would address something other than the one item it names."""


def is_alert_id(value: object) -> bool:
    return isinstance(value, str) and ALERT_ID.fullmatch(value) is not None


def is_event_id(value: object) -> bool:
    return isinstance(value, str) and EVENT_ID.fullmatch(value) is not None


def is_rule_id(value: object) -> bool:
    """A rule id (RULE_ID), matched whole: no trailing newline."""
    return isinstance(value, str) and RULE_ID.fullmatch(value) is not None


def is_comment_id(value: object) -> bool:
    return isinstance(value, str) and COMMENT_ID.fullmatch(value) is not None


def is_idempotency_key(value: object) -> bool:
    return isinstance(value, str) and IDEMPOTENCY_KEY.fullmatch(value) is not None


def is_scope_name(value: object) -> bool:
    return isinstance(value, str) and SCOPE_NAME.fullmatch(value) is not None


def is_trigger_id(value: object, scope: str) -> bool:
    """A trigger id of the app's grammar that belongs to `scope`."""
    match = TRIGGER_ID.fullmatch(value) if isinstance(value, str) else None
    return match is not None and match.group("scope") == scope


def is_channel_name(value: object) -> bool:
    return isinstance(value, str) and CHANNEL_NAME.fullmatch(value) is not None


def is_search_id(value: object) -> bool:
    return isinstance(value, str) and SEARCH_ID.fullmatch(value) is not None


def is_object_id(value: object) -> bool:
    """An object id: see MAX_OBJECT_ID_LENGTH above. `str.isprintable` is false for controls, format
    characters, surrogates, private-use and unassigned code points, and every space but ' '."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_OBJECT_ID_LENGTH:
        return False
    if not value[0].isalnum() or value[-1] == " ":
        return False
    return value.isprintable() and OBJECT_ID_EXCLUDED.isdisjoint(value)


def is_suppression_id(value: object) -> bool:
    return isinstance(value, str) and SUPPRESSION_ID.fullmatch(value) is not None


def is_evaluation_id(value: object) -> bool:
    return isinstance(value, str) and EVALUATION_ID.fullmatch(value) is not None


def is_governance_activity_id(value: object) -> bool:
    return isinstance(value, str) and GOVERNANCE_ACTIVITY_ID.fullmatch(value) is not None


def is_finding_id(value: object) -> bool:
    return isinstance(value, str) and FINDING_ID.fullmatch(value) is not None


def is_governance_exception_id(value: object) -> bool:
    return isinstance(value, str) and GOVERNANCE_EXCEPTION_ID.fullmatch(value) is not None


def is_dataset_source_id(value: object) -> bool:
    """A dataset source id (DATASET_SOURCE_ID), matched whole: no trailing newline."""
    return isinstance(value, str) and DATASET_SOURCE_ID.fullmatch(value) is not None


def _has_control_character(value: str) -> bool:
    # Cc: C0 and C1 controls and DEL; Cs: lone surrogates, which cannot even be encoded.
    return any(unicodedata.category(character) in ("Cc", "Cs") for character in value)


def storage_id(value: object) -> str:
    """`value` when it is safe as a Cosmos DB item id in a request path; UnsafeStorageIdError if not.

    Refused: a non-string, empty, over 255 characters, `/ \\ ? # %`, control characters, a blank at
    either end, and `.` or `..` (a path segment the HTTP layer resolves).
    """
    if not isinstance(value, str):
        raise UnsafeStorageIdError(f"an id must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= MAX_STORAGE_ID_LENGTH:
        raise UnsafeStorageIdError(f"an id has 1 to {MAX_STORAGE_ID_LENGTH} characters")
    if value in (".", ".."):
        raise UnsafeStorageIdError("an id may not be '.' or '..'")
    if FORBIDDEN_STORAGE_ID_CHARACTERS.intersection(value):
        raise UnsafeStorageIdError("an id may not hold '/', '\\', '?', '#' or '%'")
    if _has_control_character(value) or value != value.strip():
        raise UnsafeStorageIdError("an id may not hold control characters or start or end with a blank")
    return value


def storage_blob_name(value: object) -> str:
    """`value` when it is a blob name of the shape the app writes: '/'-separated segments of letters,
    digits, '_', '.', '=' and '-', none of them '.' or '..'. UnsafeStorageIdError if not."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_BLOB_NAME_LENGTH:
        raise UnsafeStorageIdError(f"a blob name has 1 to {MAX_BLOB_NAME_LENGTH} characters")
    for segment in value.split("/"):
        if segment in (".", "..") or BLOB_NAME_SEGMENT.fullmatch(segment) is None:
            raise UnsafeStorageIdError("a blob name is '/'-separated segments of A-Z a-z 0-9 _ . = -")
    return value
