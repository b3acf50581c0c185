"""Protocols for the Azure SDK clients that services hold directly, so tests can pass in-memory fakes
that mypy checks against the same shape."""

from __future__ import annotations

from typing import Protocol


class MessageQueue(Protocol):
    """A Storage queue as the services send to it: azure.storage.queue.QueueClient."""

    def send_message(self, content: str) -> object: ...
