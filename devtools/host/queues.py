"""Queue triggers: poll, batch, back off, retry with visibility, move to poison, send outputs."""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueClient, QueueMessage

from devtools.host.config import QueueOptions
from devtools.host.invoker import FunctionInvoker, InvocationResult
from devtools.host.storage import QueueClientFactory

logger = logging.getLogger("devtools.host.queues")

MIN_POLLING_INTERVAL = 0.1
# A received message stays invisible for this long and the lease is renewed from the moment it is
# received until its function ends, as the Functions host does. If the host dies, the message is visible
# again within this time.
MESSAGE_LEASE_SECONDS = int(os.environ.get("AOC_HOST_QUEUE_LEASE_SECONDS", "30"))
# Renewed three times per lease, so one slow or failed renewal still leaves time for the next.
RENEW_EVERY_SECONDS = max(0.25, MESSAGE_LEASE_SECONDS / 3)
SHUTDOWN_GRACE_SECONDS = 20.0


def encode_message(body: str | bytes, encoding: Literal["base64", "none"]) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")


def decode_message(content: str, encoding: Literal["base64", "none"]) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError(
                "message is not valid base64; host.json extensions.queues.messageEncoding is base64"
            ) from exc
    return content.encode("utf-8")


class PollingBackoff:
    """Exponential back-off while a queue is empty, capped at maxPollingInterval."""

    def __init__(self, maximum: float, minimum: float = MIN_POLLING_INTERVAL) -> None:
        self.minimum = min(minimum, maximum)
        self.maximum = maximum
        self.current = self.minimum

    def empty_poll(self) -> float:
        """The wait after an empty poll; each one doubles the next."""
        wait = self.current
        self.current = min(self.current * 2, self.maximum)
        return wait

    def reset(self) -> None:
        self.current = self.minimum


def ensure_queue(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()


class QueueOutputSender:
    """Sends output-binding messages and wakes any local listener of the target queue."""

    def __init__(self, clients: QueueClientFactory, encoding: Literal["base64", "none"]) -> None:
        self._clients = clients
        self._encoding = encoding
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._created: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def subscribe(self, queue_name: str, wake: Callable[[], None]) -> None:
        self._listeners.setdefault(queue_name, []).append(wake)

    def send_all(self, result: InvocationResult) -> None:
        for binding, messages in result.queue_outputs.items():
            client = self._clients.queue(binding.connection, binding.queue_name)
            key = (binding.connection, binding.queue_name)
            if key not in self._created:
                ensure_queue(client)
                with self._lock:
                    self._created.add(key)
            for message in messages:
                client.send_message(encode_message(message, self._encoding))
            for wake in self._listeners.get(binding.queue_name, []):
                wake()


class _Lease:
    """The current pop receipt of a message being processed, renewed in the background."""

    def __init__(self, message: QueueMessage) -> None:
        self.message_id = message.id
        self.pop_receipt = message.pop_receipt
        self.lock = threading.Lock()
        self.released = False


@dataclass
class ListenerStatus:
    queue: str
    polling_interval_ms: float
    in_flight: int
    processed: int
    failed: int
    poisoned: int


class QueueListener:
    """Runs one queue-triggered function against its queue until stopped."""

    def __init__(
        self,
        invoker: FunctionInvoker,
        clients: QueueClientFactory,
        options: QueueOptions,
        sender: QueueOutputSender,
        record: Callable[..., None],
    ) -> None:
        self.invoker = invoker
        self.queue_name = str(invoker.trigger["queueName"]).lower()
        self.connection = str(invoker.trigger.get("connection") or "AzureWebJobsStorage")
        self.options = options
        self.queue = clients.queue(self.connection, self.queue_name)
        self.poison = clients.queue(self.connection, f"{self.queue_name}-poison")
        self._sender = sender
        self._record = record
        self.backoff = PollingBackoff(options.max_polling_interval)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._slot_freed = threading.Condition()
        self._in_flight = 0
        self._pending: dict[concurrent.futures.Future[None], tuple[QueueMessage, _Lease]] = {}
        self._pending_lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=options.batch_size + options.new_batch_threshold,
            thread_name_prefix=f"queue-{self.queue_name}",
        )
        self._thread = threading.Thread(target=self._poll_loop, name=f"poll-{self.queue_name}", daemon=True)
        self._leases: set[_Lease] = set()
        self._stop_renewing = threading.Event()
        self._leases_lock = threading.Lock()
        self._renewer = threading.Thread(
            target=self._renew_loop, name=f"lease-{self.queue_name}", daemon=True
        )
        self.processed = self.failed = self.poisoned = 0
        sender.subscribe(self.queue_name, self.wake)

    def start(self) -> None:
        ensure_queue(self.queue)
        self._thread.start()
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop_renewing.wait(timeout=RENEW_EVERY_SECONDS):
            with self._leases_lock:
                leases = list(self._leases)
            for lease in leases:
                with lease.lock:
                    if lease.released:
                        continue
                    try:
                        receipt = self.queue.update_message(
                            lease.message_id, lease.pop_receipt, visibility_timeout=MESSAGE_LEASE_SECONDS
                        )
                        lease.pop_receipt = receipt.pop_receipt
                    except Exception:
                        logger.warning(
                            "queue %s: could not renew the lease of %s; if it runs out, the message is "
                            "delivered again while this invocation still runs",
                            self.queue_name, lease.message_id,
                        )  # fmt: skip

    def wake(self) -> None:
        self._wake.set()

    def status(self) -> ListenerStatus:
        return ListenerStatus(
            queue=self.queue_name,
            polling_interval_ms=round(self.backoff.current * 1000, 1),
            in_flight=self._in_flight,
            processed=self.processed,
            failed=self.failed,
            poisoned=self.poisoned,
        )

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            with self._slot_freed:
                while self._in_flight > self.options.new_batch_threshold and not self._stop.is_set():
                    self._slot_freed.wait(timeout=1.0)
            if self._stop.is_set():
                break
            try:
                # One request for the whole batch, as the Functions host does. Without messages_per_page
                # the SDK fetches one message per request, and the first one's lease would tick away
                # while the rest of the batch is fetched.
                messages = list(
                    self.queue.receive_messages(
                        messages_per_page=self.options.batch_size,
                        max_messages=self.options.batch_size,
                        visibility_timeout=MESSAGE_LEASE_SECONDS,
                    )
                )
            except Exception:
                logger.exception("queue %s: receive failed", self.queue_name)
                messages = []
            if not messages:
                wait = self.backoff.empty_poll()
                self._wake.wait(timeout=wait)
                if self._wake.is_set():
                    self._wake.clear()
                    self.backoff.reset()
                continue
            self.backoff.reset()
            for message in messages:
                lease = self._track(message)  # renewed from now, not from when its invocation starts
                with self._slot_freed:
                    self._in_flight += 1
                future = self._pool.submit(self._process, message, lease)
                with self._pending_lock:
                    self._pending[future] = (message, lease)
                future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        with self._pending_lock:
            self._pending.pop(future, None)
        with self._slot_freed:
            self._in_flight -= 1
            self._slot_freed.notify_all()

    def _move_to_poison(self, message: QueueMessage, pop_receipt: str | None) -> None:
        ensure_queue(self.poison)
        self.poison.send_message(message.content)
        self.queue.delete_message(message.id, pop_receipt)
        self.poisoned += 1
        logger.warning(
            "queue %s: message %s moved to %s-poison after %d dequeues",
            self.queue_name, message.id, self.queue_name, message.dequeue_count,
        )  # fmt: skip

    def _track(self, message: QueueMessage) -> _Lease:
        lease = _Lease(message)
        with self._leases_lock:
            self._leases.add(lease)
        return lease

    def _release(self, lease: _Lease) -> None:
        """Stop renewing; the caller holds `lease.lock`."""
        lease.released = True
        with self._leases_lock:
            self._leases.discard(lease)

    def _process(self, message: QueueMessage, lease: _Lease | None = None) -> None:
        lease = lease or self._track(message)
        if (message.dequeue_count or 0) > self.options.max_dequeue_count:
            with lease.lock:
                self._release(lease)
                self._move_to_poison(message, lease.pop_receipt)
            return
        started = time.monotonic()
        context = self.invoker.new_context()
        error: BaseException | None = None
        try:
            body = decode_message(message.content, self.options.message_encoding)
            trigger_value = FunctionsQueueMessage(
                id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                expiration_time=message.expires_on,
                insertion_time=message.inserted_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            result = self.invoker.invoke(trigger_value, context)
            self._sender.send_all(result)
        except Exception as exc:
            error = exc
        self._record(
            self.invoker,
            context,
            "queueTrigger",
            started,
            error,
            message_id=message.id,
            dequeue_count=message.dequeue_count,
        )
        with lease.lock:
            self._release(lease)
            try:
                if error is None:
                    self.processed += 1
                    self.queue.delete_message(message.id, lease.pop_receipt)
                elif (message.dequeue_count or 0) >= self.options.max_dequeue_count:
                    self.failed += 1
                    self._move_to_poison(message, lease.pop_receipt)
                else:
                    self.failed += 1
                    self.queue.update_message(
                        message.id, lease.pop_receipt, visibility_timeout=int(self.options.visibility_timeout)
                    )
            except ResourceNotFoundError:
                logger.warning(
                    "queue %s: message %s was already gone: its lease ran out while the function ran, so "
                    "another copy of it may have run too",
                    self.queue_name, message.id,
                )  # fmt: skip

    def stop(self) -> None:
        """Stop polling; let running invocations finish and release the ones not yet started."""
        self._stop.set()
        self._wake.set()
        with self._slot_freed:
            self._slot_freed.notify_all()
        self._thread.join(timeout=5)
        with self._pending_lock:
            pending = dict(self._pending)
        released = 0
        for future, (message, lease) in pending.items():
            if future.cancel():
                with lease.lock:
                    self._release(lease)
                    try:
                        self.queue.update_message(message.id, lease.pop_receipt, visibility_timeout=0)
                        released += 1
                    except ResourceNotFoundError:
                        pass
        concurrent.futures.wait(list(pending), timeout=SHUTDOWN_GRACE_SECONDS)
        self._stop_renewing.set()  # the running invocations kept their leases until now
        self._pool.shutdown(wait=False, cancel_futures=True)
        if released:
            logger.info("queue %s: released %d unstarted messages", self.queue_name, released)
