"""POST /api/queues/{name}/replay against Azurite and cosmosdb-server (shared/api/queues_api.py).

Each test replays a queue of its own (and its poison queue), created here and allowed through the
resource's `queues`, so the app's shared queues are never touched; audit records live under a tenant of
their own."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_query import SensitivityPolicy
from shared.api.queues_api import QueuesApi
from shared.api.responses import ApiGuard, ApiResponse
from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers, poison_queue
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
JSON = {"Content-Type": "application/json"}
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")} | JSON
ANALYST = {"x-ms-client-principal": swa_principal(["analyst"], user="ana@contoso.com")} | JSON
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")} | JSON


def body(response: ApiResponse) -> Any:
    return json.loads(response.body)


class Harness:
    def __init__(self) -> None:
        clients = get_clients()
        self.tenant = f"replay-{uuid.uuid4().hex[:10]}"
        self.name = f"replay-q-{uuid.uuid4().hex[:10]}"
        self.created = [self.name, poison_queue(self.name)]
        for name in self.created:
            clients.queue_service.create_queue(name)
        self.audit_container = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.api = QueuesApi(
            ApiGuard(
                Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
            ),
            clients.queue_service,
            AuditLog(self.audit_container, self.tenant, ManualClock(NOW)),
            queues=(self.name,),
        )

    def raw(self, name: str) -> QueueClient:
        """A client without an encode policy: message text exactly as stored."""
        return get_clients().queue_service.get_queue_client(name)

    @property
    def queue(self) -> QueueClient:
        return self.raw(self.name)

    @property
    def poison(self) -> QueueClient:
        return self.raw(poison_queue(self.name))

    def depth(self, client: QueueClient) -> int:
        return int(client.get_queue_properties().approximate_message_count or 0)

    def contents(self, client: QueueClient) -> list[str]:
        """Every message's text, received (and so hidden) for the rest of the test."""
        found: list[str] = []
        while batch := list(
            client.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=300)
        ):
            found.extend(str(m.content) for m in batch)
        return found

    def replay(
        self, name: str | None = None, raw: bytes = b"", headers: dict[str, str] = ADMIN
    ) -> ApiResponse:
        queue = self.name if name is None else name
        path = f"/api/queues/{queue}/replay"
        return self.api.replay(queue, f"http://h{path}", raw, headers, path)

    def audit_records(self) -> list[dict[str, Any]]:
        return list(
            self.audit_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.action = 'queue.replay' ORDER BY c.at",
                parameters=[{"name": "@pk", "value": self.tenant}],
                partition_key=self.tenant,
            )
        )

    def close(self) -> None:
        for name in self.created:
            get_clients().queue_service.delete_queue(name)


@pytest.fixture
def harness(app_environment: dict[str, str]) -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


def test_replay_moves_up_to_max_messages_back_unchanged_and_is_audited(harness: Harness) -> None:
    sent = [f'message {i}: {{"n": {i}}} é ✓' for i in range(5)]
    for content in sent:
        harness.poison.send_message(content)

    first = harness.replay(raw=b'{"max": 3}', headers={**ADMIN, "Idempotency-Key": "r-1"})

    assert first.status == 200, first.body
    assert body(first) == {"queue": harness.name, "replayed": 3, "remaining": 2}
    assert harness.depth(harness.queue) == 3
    assert harness.depth(harness.poison) == 2

    second = harness.replay()  # no body: the default, 32
    assert body(second) == {"queue": harness.name, "replayed": 2, "remaining": 0}
    assert sorted(harness.contents(harness.queue)) == sorted(sent)  # each once, byte for byte
    assert harness.depth(harness.poison) == 0

    third = harness.replay(raw=b"{}")
    assert body(third) == {"queue": harness.name, "replayed": 0, "remaining": 0}

    records = harness.audit_records()
    assert [(r["actor"], r["target_type"], r["target_id"]) for r in records] == [
        ("root@contoso.com", "queue", harness.name)
    ] * 3
    assert [r["after"] for r in records] == [
        {"replayed": 3, "remaining": 2},
        {"replayed": 2, "remaining": 0},
        {"replayed": 0, "remaining": 0},
    ]
    assert [r["before"] for r in records] == [{"max": 3}, {"max": 32}, {"max": 32}]


def test_replay_pages_through_more_than_32_messages(harness: Harness) -> None:
    for i in range(45):
        harness.poison.send_message(f"m{i:02d}")

    response = harness.replay(raw=b'{"max": 40}')

    assert body(response) == {"queue": harness.name, "replayed": 40, "remaining": 5}
    rest = harness.replay(raw=b'{"max": 500}')
    assert body(rest) == {"queue": harness.name, "replayed": 5, "remaining": 0}
    assert sorted(harness.contents(harness.queue)) == [f"m{i:02d}" for i in range(45)]


def test_host_encoded_messages_come_back_as_the_worker_decodes_them(harness: Harness) -> None:
    """The host stores base64 text (QUEUE_MESSAGE_ENCODING=base64); the replay copies the text without
    decoding it, so the worker decodes the same bytes it failed on."""
    payload = b'{"source": "entra_audit", "blob": "raw/x.json", "bytes": "\xff\x00"}'
    encoded = get_clients().queue_service.get_queue_client(
        poison_queue(harness.name), message_encode_policy=BinaryBase64EncodePolicy()
    )
    encoded.send_message(payload)  # as the host moves it: the base64 text it received
    [stored] = harness.poison.peek_messages()

    assert body(harness.replay()) == {"queue": harness.name, "replayed": 1, "remaining": 0}

    decoding = get_clients().queue_service.get_queue_client(
        harness.name, message_decode_policy=BinaryBase64DecodePolicy()
    )
    [message] = list(decoding.receive_messages(max_messages=1))
    assert message.content == payload
    assert base64.b64decode(str(stored.content)) == payload


def test_a_missing_poison_queue_replays_nothing(harness: Harness) -> None:
    get_clients().queue_service.delete_queue(poison_queue(harness.name))
    harness.created.remove(poison_queue(harness.name))

    response = harness.replay()

    assert response.status == 200, response.body
    assert body(response) == {"queue": harness.name, "replayed": 0, "remaining": 0}


def test_a_missing_queue_is_a_409_and_the_message_stays_in_the_poison_queue(harness: Harness) -> None:
    harness.poison.send_message("kept")
    get_clients().queue_service.delete_queue(harness.name)
    harness.created.remove(harness.name)

    response = harness.replay()

    assert response.status == 409, response.body
    assert body(response)["type"].endswith("/queue-missing")
    assert harness.depth(harness.poison) == 1  # hidden for a while, then visible again
    [record] = harness.audit_records()
    assert record["after"]["replayed"] == 0
    assert record["after"]["error"].startswith("ResourceNotFoundError")


def test_replay_needs_admin_a_known_queue_and_a_valid_body(harness: Harness) -> None:
    harness.poison.send_message("stay")
    assert harness.replay(headers=READER).status == 403
    assert harness.replay(headers=ANALYST).status == 403
    assert harness.replay(headers=JSON).status == 401
    # Of the queue grammar but not a replayable queue (a poison queue, another app's), or not a name.
    for name in (poison_queue(harness.name), "ingest-poison", "someone-elses", "ab", "A" * 10, "a--b", "-ab"):
        response = harness.replay(name=name)
        assert response.status == 404, (name, response.body)
        assert body(response)["type"].endswith("/not-found")
    for raw in (b'{"max": 0}', b'{"max": 501}', b'{"max": "all"}', b'{"max": 1.5}', b'{"queue": "x"}', b"[]"):
        response = harness.replay(raw=raw)
        assert response.status == 400, (raw, response.body)
    assert harness.replay(raw=b'{"max": 1}', headers={**ADMIN, "Content-Type": "text/plain"}).status == 415
    assert harness.replay(raw=b'{"max": 1}', headers={**ADMIN, "Content-Type": ""}).status == 415
    assert harness.replay(raw=b'{"max": "' + b"9" * 2000 + b'"}').status == 413
    assert harness.depth(harness.poison) == 1
    assert harness.depth(harness.queue) == 0
    assert harness.audit_records() == []
