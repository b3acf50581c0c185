"""The rule source against a real blob container in Azurite: the default pack, the override blob, the
TTL, ETags, refused overrides and removal (shared/rules/source.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import ContainerClient

from shared.platform.clients import get_clients
from shared.rules.engine import BusinessHours
from shared.rules.source import DEFAULT_RULES_FILE, RULES_BLOB, RuleSource, blob_reader, compile_rules
from tests.support.clock import ManualClock

NOW = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)
TTL = 60.0
HOURS = BusinessHours.parse("08:00-18:00", "Mon-Fri", "Europe/London")

OVERRIDE = """\
version: 1
lists:
  watched_operations: [Add member to role, Reset user password]
rules:
  - id: custom.watched-operation
    title: Watched operation
    description: An operation the security team watches.
    severity: high
    group_by: [actor.upn|actor.id]
    when:
      all:
        - {field: operation, in: $watched_operations}
        - {field: result, neq: failure}
"""

SECOND_OVERRIDE = """\
version: 1
rules:
  - id: custom.any-failure
    title: Any failure
    description: Every failed operation.
    severity: low
    when: {field: result, eq: failure}
"""

INVALID_OVERRIDE = """\
version: 1
rules:
  - id: custom.fine
    title: Fine
    description: A valid rule next to a broken one.
    severity: low
    when: {field: result, eq: failure}
  - id: custom.broken
    title: Broken
    description: A typo in the severity and a regex that does not compile.
    severity: urgent
    when: {field: actor.upn, regex: "(admin"}
"""

EVENT = {
    "id": "entra_audit:Directory_ABC_1",
    "pk": "contoso-tenant:2026-11",
    "tenant_id": "contoso-tenant",
    "source": "entra_audit",
    "service": "Directory",
    "category": "UserManagement",
    "operation": "Reset user password",
    "operation_type": "update",
    "result": "success",
    "actor": {"type": "user", "id": "u-1", "upn": "zoe@contoso.com", "display": "Zoë", "ip": "203.0.113.7"},
    "targets": [{"type": "User", "id": "u-2", "display": "Adele Vance", "modified_properties": []}],
    "timestamp": "2026-11-03T10:00:00.000Z",
    "tags": [],
}


@pytest.fixture
def container(app_environment: dict[str, str]) -> Iterator[ContainerClient]:
    client = get_clients().blob_service.get_container_client(f"rules-{uuid.uuid4().hex[:8]}")
    client.create_container()
    yield client
    client.delete_container()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def source(container: ContainerClient, clock: ManualClock) -> RuleSource:
    return RuleSource(HOURS, clock, override=blob_reader(container), ttl_seconds=TTL)


def upload(container: ContainerClient, text: str) -> str:
    result = container.get_blob_client(RULES_BLOB).upload_blob(text.encode("utf-8"), overwrite=True)
    return str(result["etag"])


def rule_ids(source: RuleSource) -> list[str]:
    return [c.id for c in source.current().compiled]


def default_rule_ids() -> list[str]:
    pack = compile_rules(DEFAULT_RULES_FILE.read_text(encoding="utf-8"), HOURS, "file:default_rules.yaml")
    return [c.id for c in pack.compiled]


def test_without_a_blob_the_default_pack_is_used(source: RuleSource) -> None:
    rules = source.current()
    assert rules.origin == f"file:{DEFAULT_RULES_FILE.name}"
    assert rules.origin.startswith("file:")
    assert rule_ids(source) == default_rule_ids()
    assert len(rules.compiled) > 0
    assert source.last_error is None


def test_an_override_is_picked_up_only_after_the_ttl(
    source: RuleSource, container: ContainerClient, clock: ManualClock
) -> None:
    default = source.current()
    upload(container, OVERRIDE)

    clock.advance(TTL - 1)
    assert source.current() is default

    clock.advance(1)
    rules = source.current()
    assert rules.origin == "blob:rules.yaml"
    assert [c.id for c in rules.compiled] == ["custom.watched-operation"]
    assert [c.id for c in rules.match(EVENT)] == ["custom.watched-operation"]
    assert rules.match({**EVENT, "operation": "Delete user"}) == []
    assert source.last_error is None


def test_an_unchanged_etag_does_not_recompile(
    source: RuleSource, container: ContainerClient, clock: ManualClock
) -> None:
    upload(container, OVERRIDE)
    first = source.current()
    assert first.origin == "blob:rules.yaml"

    for _ in range(3):
        clock.advance(TTL)
        assert source.current() is first
    source.invalidate()
    assert source.current() is first

    # the same text uploaded again is a new ETag: recompiled, same version hash
    etag = container.get_blob_client(RULES_BLOB).get_blob_properties().etag
    assert upload(container, OVERRIDE) != etag
    clock.advance(TTL)
    again = source.current()
    assert again is not first
    assert again.version == first.version


def test_a_changed_blob_is_recompiled_after_the_ttl(
    source: RuleSource, container: ContainerClient, clock: ManualClock
) -> None:
    upload(container, OVERRIDE)
    first = source.current()
    upload(container, SECOND_OVERRIDE)

    clock.advance(TTL / 2)
    assert source.current() is first
    clock.advance(TTL / 2)
    second = source.current()
    assert [c.id for c in second.compiled] == ["custom.any-failure"]
    assert second.version != first.version


def test_invalidate_forces_a_check_before_the_ttl(
    source: RuleSource, container: ContainerClient, clock: ManualClock
) -> None:
    assert source.current().origin.startswith("file:")
    upload(container, OVERRIDE)
    clock.advance(1)
    assert source.current().origin.startswith("file:")  # cached

    source.invalidate()
    assert source.current().origin == "blob:rules.yaml"

    upload(container, SECOND_OVERRIDE)
    source.invalidate()
    assert rule_ids(source) == ["custom.any-failure"]
    # the re-check restarted the TTL
    upload(container, OVERRIDE)
    clock.advance(TTL - 1)
    assert rule_ids(source) == ["custom.any-failure"]
    clock.advance(1)
    assert rule_ids(source) == ["custom.watched-operation"]


def test_an_invalid_override_is_refused_and_the_last_good_rules_stay(
    source: RuleSource, container: ContainerClient, clock: ManualClock
) -> None:
    upload(container, OVERRIDE)
    good = source.current()
    assert good.origin == "blob:rules.yaml"

    upload(container, INVALID_OVERRIDE)
    source.invalidate()
    assert source.current() is good
    error = source.last_error
    assert error is not None
    assert "rule 'custom.broken': severity: " in error
    assert "rule 'custom.broken': when.regex: " in error
    assert "custom.fine" not in error

    # the same broken blob is not recompiled on every check: the error stays, the rules stay
    clock.advance(TTL)
    assert source.current() is good
    assert source.last_error == error

    upload(container, SECOND_OVERRIDE)
    source.invalidate()
    assert rule_ids(source) == ["custom.any-failure"]
    assert source.last_error is None


def test_an_invalid_first_override_keeps_the_default_pack(
    source: RuleSource, container: ContainerClient
) -> None:
    default = source.current()
    upload(container, "rules:\n  - id: [unbalanced\n")
    source.invalidate()
    assert source.current() is default
    assert source.last_error is not None
    assert source.last_error.startswith("blob:rules.yaml: not valid YAML")


# A "billion laughs" rule file: nine levels of nine aliases, 9^9 nodes once expanded, from about 400 bytes.
YAML_BOMB = "\n".join(
    [
        "version: 1",
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "rules: [*i]",
    ]
)


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (YAML_BOMB, "expands to more than 200000 nodes"),
        ("version: 1\nrules: &r [*r]", "recursive alias"),
        ("version: 1\nrules:" + " [" * 100 + " ]" * 100, "nests deeper than 64 levels"),
    ],
)
def test_a_yaml_bomb_in_the_override_is_refused_before_it_is_built(
    source: RuleSource, container: ContainerClient, clock: ManualClock, hostile: str, reason: str
) -> None:
    """The blob is writable by whoever holds the storage account: a bomb planted there must not stall
    the alert worker. It is refused from the parser's events and the rules in force stay."""
    default = source.current()
    upload(container, hostile)
    source.invalidate()
    assert source.current() is default
    assert source.last_error is not None
    assert source.last_error.startswith("blob:rules.yaml: not valid YAML")
    assert reason in source.last_error

    upload(container, OVERRIDE)
    source.invalidate()
    good = source.current()
    assert [c.id for c in good.compiled] == ["custom.watched-operation"]
    upload(container, hostile)
    clock.advance(TTL)
    assert source.current() is good  # a bomb over a good override keeps the good override
    assert reason in (source.last_error or "")
    assert [c.id for c in source.current().match(EVENT)] == ["custom.watched-operation"]


def test_deleting_the_blob_returns_to_the_default_pack(
    source: RuleSource, container: ContainerClient, clock: ManualClock
) -> None:
    default = source.current()
    upload(container, OVERRIDE)
    clock.advance(TTL)
    assert source.current().origin == "blob:rules.yaml"

    container.delete_blob(RULES_BLOB)
    clock.advance(TTL - 1)
    assert source.current().origin == "blob:rules.yaml"  # still cached
    clock.advance(1)
    assert source.current() is default
    assert source.current().origin.startswith("file:")
    assert source.last_error is None

    # an override uploaded again is picked up again
    upload(container, OVERRIDE)
    source.invalidate()
    assert source.current().origin == "blob:rules.yaml"


def test_deleting_a_refused_blob_clears_the_error(source: RuleSource, container: ContainerClient) -> None:
    default = source.current()
    upload(container, INVALID_OVERRIDE)
    source.invalidate()
    assert source.current() is default
    assert source.last_error is not None

    container.delete_blob(RULES_BLOB)
    source.invalidate()
    assert source.current() is default
    assert source.last_error is None


def test_storage_trouble_keeps_the_rules_in_force(container: ContainerClient, clock: ManualClock) -> None:
    reader = blob_reader(container)
    healthy = {"value": True}

    def flaky() -> object:
        if not healthy["value"]:
            raise ConnectionError("storage unavailable")
        return reader()

    source = RuleSource(HOURS, clock, override=flaky, ttl_seconds=TTL)  # type: ignore[arg-type]
    upload(container, OVERRIDE)
    good = source.current()
    assert good.origin == "blob:rules.yaml"

    healthy["value"] = False
    source.invalidate()
    assert source.current() is good
    assert source.last_error is None

    healthy["value"] = True
    upload(container, SECOND_OVERRIDE)
    source.invalidate()
    assert rule_ids(source) == ["custom.any-failure"]


def test_extra_lists_apply_to_the_override(container: ContainerClient, clock: ManualClock) -> None:
    source = RuleSource(
        HOURS,
        clock,
        override=blob_reader(container),
        extra_lists={"watched_operations": ["Delete user"]},
        ttl_seconds=TTL,
    )
    upload(container, OVERRIDE)
    rules = source.current()
    assert [c.id for c in rules.match({**EVENT, "operation": "Delete user"})] == ["custom.watched-operation"]
    assert [c.id for c in rules.match(EVENT)] == ["custom.watched-operation"]


def test_sources_on_different_containers_do_not_interfere(
    app_environment: dict[str, str], container: ContainerClient, clock: ManualClock
) -> None:
    other = get_clients().blob_service.get_container_client(f"rules-{uuid.uuid4().hex[:8]}")
    other.create_container()
    try:
        first = RuleSource(HOURS, clock, override=blob_reader(container), ttl_seconds=TTL)
        second = RuleSource(HOURS, clock, override=blob_reader(other), ttl_seconds=TTL)
        upload(container, OVERRIDE)
        upload(other, SECOND_OVERRIDE)
        assert rule_ids(first) == ["custom.watched-operation"]
        assert rule_ids(second) == ["custom.any-failure"]
    finally:
        other.delete_container()
