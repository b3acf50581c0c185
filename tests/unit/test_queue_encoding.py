"""Queue polling back-off and message encoding (host.json extensions.queues.messageEncoding)."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest

from devtools.host.config import QueueOptions
from devtools.host.invoker import AsyncRunner, FunctionInvoker
from devtools.host.queues import (
    MIN_POLLING_INTERVAL,
    PollingBackoff,
    QueueListener,
    QueueOutputSender,
    decode_message,
    encode_message,
)


def test_backoff_doubles_from_minimum_and_caps_at_maximum() -> None:
    backoff = PollingBackoff(maximum=1.0)
    waits = [backoff.empty_poll() for _ in range(7)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_backoff_default_minimum_is_100ms() -> None:
    assert MIN_POLLING_INTERVAL == 0.1
    assert PollingBackoff(maximum=60.0).empty_poll() == pytest.approx(0.1)


def test_backoff_reaches_a_large_maximum_exactly() -> None:
    backoff = PollingBackoff(maximum=60.0)
    waits = [backoff.empty_poll() for _ in range(20)]
    assert max(waits) == 60.0
    assert waits[-1] == 60.0
    assert all(a <= b for a, b in itertools.pairwise(waits))


def test_backoff_reset_returns_to_minimum() -> None:
    backoff = PollingBackoff(maximum=2.0)
    for _ in range(5):
        backoff.empty_poll()
    assert backoff.current == pytest.approx(2.0)
    backoff.reset()
    assert backoff.current == pytest.approx(0.1)
    assert backoff.empty_poll() == pytest.approx(0.1)
    assert backoff.empty_poll() == pytest.approx(0.2)


def test_backoff_minimum_clamped_to_small_maximum() -> None:
    backoff = PollingBackoff(maximum=0.05)
    assert backoff.minimum == 0.05
    assert [backoff.empty_poll() for _ in range(3)] == [0.05, 0.05, 0.05]
    backoff.reset()
    assert backoff.current == 0.05


def test_backoff_custom_minimum() -> None:
    backoff = PollingBackoff(maximum=10.0, minimum=1.0)
    assert [backoff.empty_poll() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]


@pytest.mark.parametrize("body", ["hello", "héllo wörld ✓", "", '{"a": 1}'])
def test_base64_round_trip_str(body: str) -> None:
    encoded = encode_message(body, "base64")
    assert encoded == base64.b64encode(body.encode("utf-8")).decode("ascii")
    assert decode_message(encoded, "base64") == body.encode("utf-8")


def test_base64_round_trip_bytes() -> None:
    body = bytes(range(256))
    encoded = encode_message(body, "base64")
    assert encoded.isascii()
    assert decode_message(encoded, "base64") == body


def test_base64_known_value() -> None:
    assert encode_message("hello", "base64") == "aGVsbG8="
    assert decode_message("aGVsbG8=", "base64") == b"hello"


@pytest.mark.parametrize("body", ["hello", "héllo ✓", ""])
def test_none_encoding_round_trip_str(body: str) -> None:
    encoded = encode_message(body, "none")
    assert encoded == body
    assert decode_message(encoded, "none") == body.encode("utf-8")


def test_none_encoding_bytes_input() -> None:
    encoded = encode_message("ünïcode".encode(), "none")
    assert encoded == "ünïcode"
    assert decode_message(encoded, "none") == "ünïcode".encode()


def test_none_encoding_does_not_base64() -> None:
    assert encode_message("aGVsbG8=", "none") == "aGVsbG8="
    assert decode_message("aGVsbG8=", "none") == b"aGVsbG8="


@pytest.mark.parametrize("content", ["not base64!", "aGVsbG8", "héllo", "@@@@"])
def test_decode_invalid_base64_raises_value_error(content: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        decode_message(content, "base64")


# --- a queue-triggered invocation, against in-memory fakes ------------------------------------


class _FakeQueue:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []
        self.deleted: list[tuple[str, str]] = []
        self.updated: list[tuple[str, str, int]] = []

    def create_queue(self) -> None:
        return None

    def send_message(self, content: str) -> None:
        self.sent.append(content)

    def delete_message(self, message_id: str, pop_receipt: str) -> None:
        self.deleted.append((message_id, pop_receipt))

    def update_message(self, message_id: str, pop_receipt: str, visibility_timeout: int) -> None:
        self.updated.append((message_id, pop_receipt, visibility_timeout))


class _FakeClients:
    def __init__(self) -> None:
        self.queues: dict[str, _FakeQueue] = {}

    def queue(self, connection: str, queue_name: str) -> _FakeQueue:
        return self.queues.setdefault(queue_name, _FakeQueue(queue_name))


def _storage_message(content: str, dequeue_count: int) -> SimpleNamespace:
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return SimpleNamespace(
        id="msg-1",
        content=content,
        dequeue_count=dequeue_count,
        expires_on=now + dt.timedelta(days=7),
        inserted_on=now,
        next_visible_on=now + dt.timedelta(minutes=10),
        pop_receipt="receipt-1",
    )


@pytest.fixture
def listener_parts(tmp_path: Any) -> Iterator[tuple[Any, _FakeClients, list[Any], list[Any]]]:
    app = func.FunctionApp()
    received: list[Any] = []

    @app.queue_trigger(arg_name="msg", queue_name="work-items", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="results", connection="AzureWebJobsStorage")
    def work(msg: func.QueueMessage, out: func.Out[str]) -> None:
        received.append(msg)
        if msg.get_body() == b"fail":
            raise RuntimeError("cannot process")
        out.set("done:" + msg.get_body().decode())

    runner = AsyncRunner()
    (function,) = app.get_functions()
    invoker = FunctionInvoker(function, str(tmp_path), runner)
    clients = _FakeClients()
    records: list[Any] = []
    sender = QueueOutputSender(clients, "base64")  # type: ignore[arg-type]
    listener = QueueListener(
        invoker,
        clients,  # type: ignore[arg-type]
        QueueOptions(max_dequeue_count=3, visibility_timeout=10.0),
        sender,
        lambda *args, **kwargs: records.append((args, kwargs)),
    )
    try:
        yield listener, clients, records, received
    finally:
        listener._pool.shutdown(wait=True)
        runner.close()


def test_message_over_max_dequeue_count_goes_to_poison_without_invoking(
    listener_parts: tuple[Any, _FakeClients, list[Any], list[Any]],
) -> None:
    listener, clients, records, received = listener_parts
    listener._process(_storage_message(encode_message("payload", "base64"), dequeue_count=4))
    assert received == []
    assert records == []
    assert clients.queues["work-items-poison"].sent == [encode_message("payload", "base64")]
    assert clients.queues["work-items"].deleted == [("msg-1", "receipt-1")]
    assert listener.poisoned == 1


def test_queue_message_is_delivered_to_the_function(
    listener_parts: tuple[Any, _FakeClients, list[Any], list[Any]],
) -> None:
    listener, clients, records, received = listener_parts
    listener._process(_storage_message(encode_message("héllo", "base64"), dequeue_count=1))
    ((args, _kwargs),) = records
    assert args[4] is None, f"invocation failed: {args[4]!r}"
    (message,) = received
    assert message.get_body() == "héllo".encode()
    assert message.id == "msg-1"
    assert message.dequeue_count == 1
    assert clients.queues["work-items"].deleted == [("msg-1", "receipt-1")]
    assert clients.queues["results"].sent == [encode_message("done:héllo", "base64")]
    assert listener.processed == 1


def test_failed_message_is_made_visible_again_for_retry(
    listener_parts: tuple[Any, _FakeClients, list[Any], list[Any]],
) -> None:
    listener, clients, records, received = listener_parts
    listener._process(_storage_message(encode_message("fail", "base64"), dequeue_count=1))
    ((args, _kwargs),) = records
    assert isinstance(args[4], RuntimeError)
    assert len(received) == 1
    queue = clients.queues["work-items"]
    assert queue.updated == [("msg-1", "receipt-1", 10)]
    assert queue.deleted == []
    assert "results" not in clients.queues
    assert (listener.failed, listener.processed, listener.poisoned) == (1, 0, 0)


def test_failure_on_last_dequeue_moves_message_to_poison(
    listener_parts: tuple[Any, _FakeClients, list[Any], list[Any]],
) -> None:
    listener, clients, records, _received = listener_parts
    content = encode_message("fail", "base64")
    listener._process(_storage_message(content, dequeue_count=3))
    ((args, _kwargs),) = records
    assert isinstance(args[4], RuntimeError)
    assert clients.queues["work-items-poison"].sent == [content]
    assert clients.queues["work-items"].deleted == [("msg-1", "receipt-1")]
    assert clients.queues["work-items"].updated == []
    assert (listener.failed, listener.poisoned) == (1, 1)


def test_message_that_is_not_base64_fails_the_invocation(
    listener_parts: tuple[Any, _FakeClients, list[Any], list[Any]],
) -> None:
    listener, clients, records, received = listener_parts
    listener._process(_storage_message("plain text, not base64", dequeue_count=1))
    ((args, _kwargs),) = records
    assert isinstance(args[4], ValueError)
    assert received == []
    assert clients.queues["work-items"].updated == [("msg-1", "receipt-1", 10)]
