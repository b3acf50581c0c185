"""POST /api/queues/{name}/replay: move a poison queue's messages back to their queue (Admin).

The Functions host moves a message to `<queue>-poison` after maxDequeueCount failed deliveries (host.json).
Once the cause is fixed (a secret renewed, a pipeline repaired), an admin sends those messages back. For
each message: its content is sent to the queue as it is (no decoding: both clients carry the text as
stored, whatever QUEUE_MESSAGE_ENCODING is), then it is deleted from the poison queue. At-least-once: if
the delete fails, the message reappears in the poison queue after VISIBILITY_SECONDS and may be replayed
twice; the workers are idempotent (claims, fingerprint ids).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient
from pydantic import BaseModel, ConfigDict, Field

from shared.api.audit import AuditLog
from shared.api.auth import Principal, Role
from shared.api.problems import ApiProblem
from shared.api.responses import ApiGuard, require_id
from shared.api.routing import Call, NoQuery, PathParam, Reply, Resource, route
from shared.platform.redact import redact
from shared.platform.resources import Queues, poison_queue

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024
DEFAULT_REPLAY = 32
MAX_REPLAY = 500
PAGE = 32  # the most messages one Get Messages call returns
VISIBILITY_SECONDS = 120  # a received message stays hidden this long: the send and the delete fit in it
# An Azure Storage queue name: 3-63 lower-case letters, digits and single hyphens, neither end a hyphen.
QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


def is_queue_name(value: object) -> bool:
    return isinstance(value, str) and QUEUE_NAME.fullmatch(value) is not None


QUEUE = PathParam(
    "name",
    f"the queue whose poison queue is replayed: one of {', '.join(Queues.ALL)}",
    "queue",
    is_queue_name,
    max_length=63,
)


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: int = Field(
        default=DEFAULT_REPLAY, ge=1, le=MAX_REPLAY, description="the most messages to move in this call"
    )


class ReplayResult(BaseModel):
    queue: str
    replayed: int = Field(description="messages sent back to the queue and deleted from its poison queue")
    remaining: int = Field(description="the poison queue's approximate depth afterwards")


def _describe(exc: BaseException) -> str:
    message = str(exc).splitlines()[0] if str(exc) else ""
    return redact(f"{type(exc).__name__}: {message}")[:300]


class QueuesApi(Resource):
    """`queues` are the queues whose poison queues may be replayed (the app's, Queues.ALL)."""

    def __init__(
        self,
        guard: ApiGuard,
        queue_service: QueueServiceClient,
        audit: AuditLog,
        *,
        queues: Sequence[str] = Queues.ALL,
    ) -> None:
        self.guard = guard
        self._queue_service = queue_service
        self._audit = audit
        self._queues = frozenset(queues)

    @route(
        "POST",
        "queues/{name}/replay",
        "replay_queue",
        operation_id="replayPoisonQueue",
        role=Role.ADMIN,
        summary="Move a poison queue's messages back to their queue",
        tag="operations",
        query=NoQuery,
        body=ReplayBody,
        max_body_bytes=MAX_BODY_BYTES,
        response=ReplayResult,
        path_params=(QUEUE,),
        description="Sends up to `max` (default 32, at most 500) messages of `<name>-poison` back to "
        "`<name>`, content unchanged, each deleted from the poison queue once sent (at-least-once). "
        'Audited with the count. Takes {}, {"max": n} or no body.',
    )
    def replay(self, call: Call[NoQuery, ReplayBody]) -> Reply:
        name = require_id("queue", call.params["name"], lambda value: value in self._queues)
        principal, key = call.principal, call.idempotency_key
        target = self._queue_service.get_queue_client(name)
        poison = self._queue_service.get_queue_client(poison_queue(name))
        replayed = 0
        try:
            for message in self._received(poison, call.body.max):
                target.send_message(message.content)
                replayed += 1
                try:
                    poison.delete_message(message)
                except ResourceNotFoundError:  # deleted meanwhile (another replay, after its visibility)
                    logger.warning("poison message %s of %s was gone before its delete", message.id, name)
            remaining = self._depth(poison)
        except Exception as exc:
            error = _describe(exc)
            logger.error(
                "replay of %s by %s failed after %d message(s): %s", name, principal.name, replayed, error
            )
            self._record(principal, name, call.body.max, {"replayed": replayed, "error": error}, key)
            if isinstance(exc, ResourceNotFoundError):  # the queue itself: the bootstrap creates it
                raise ApiProblem(
                    409, "Conflict", f"queue {name} does not exist", kind="queue-missing"
                ) from None
            raise ApiProblem(
                500,
                "Internal Server Error",
                f"the replay failed after {replayed}: {error}",
                kind="replay-failed",
            ) from None
        self._record(principal, name, call.body.max, {"replayed": replayed, "remaining": remaining}, key)
        logger.info("%s replayed %d message(s) of %s; %d remain", principal.name, replayed, name, remaining)
        return ReplayResult(queue=name, replayed=replayed, remaining=remaining)

    def _received(self, poison: QueueClient, limit: int) -> Iterator[QueueMessage]:
        """Up to `limit` poison messages, received page by page (each hidden for VISIBILITY_SECONDS); none
        when the poison queue does not exist yet (the host creates it when it first gives up)."""
        try:
            yield from poison.receive_messages(
                messages_per_page=min(PAGE, limit), max_messages=limit, visibility_timeout=VISIBILITY_SECONDS
            )
        except ResourceNotFoundError:
            if self._exists(poison):
                raise

    @staticmethod
    def _exists(queue: QueueClient) -> bool:
        try:
            queue.get_queue_properties()
        except ResourceNotFoundError:
            return False
        return True

    @staticmethod
    def _depth(queue: QueueClient) -> int:
        try:
            return int(queue.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def _record(
        self, principal: Principal, name: str, limit: int, after: dict[str, int | str], key: str | None
    ) -> None:
        self._audit.record(principal, "queue.replay", "queue", name, {"max": limit}, after, request_id=key)
