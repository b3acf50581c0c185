"""Writing an event's annotations (tags, comments): read-modify-replace under the event's ETag,
re-read on a lost race; and tagging many events at once, a few at a time."""

from __future__ import annotations

import concurrent.futures
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from azure.cosmos import ContainerProxy

from shared.api.events_models import TagChange, TagLimitError, apply_tags
from shared.api.problems import ApiProblem, conflict
from shared.api.responses import not_found
from shared.platform.cosmos import ConcurrentUpdateError, read_or_none, update_unchanged

logger = logging.getLogger(__name__)

MAX_UPDATE_RETRIES = 8
BULK_CONCURRENCY = 8


class EventAnnotator:
    def __init__(self, events: ContainerProxy) -> None:
        self._events = events

    def update(
        self, event: dict[str, Any], mutate: Callable[[dict[str, Any]], bool]
    ) -> tuple[dict[str, Any], bool]:
        """Apply `mutate` and replace the event under its ETag, re-reading on a lost race.

        Returns the stored event and whether it changed (`mutate` returns False for nothing to do);
        a 409 problem when it kept changing, a 404 when it is gone.
        """
        try:
            stored, changed = update_unchanged(
                self._events, event["id"], event["pk"], mutate, current=event, attempts=MAX_UPDATE_RETRIES
            )
        except ConcurrentUpdateError:
            raise conflict("the event kept changing meanwhile: read it again and retry") from None
        if stored is None:
            raise not_found("event", event["id"])
        return stored, changed

    def tag_all(self, targets: Iterable[tuple[str, str]], change: TagChange) -> Counter[str]:
        """Tag each (id, partition key); how many were updated, unchanged, skipped (too many tags) and
        failed (an event that kept changing, or an error, logged)."""
        outcomes: Counter[str] = Counter()
        with concurrent.futures.ThreadPoolExecutor(BULK_CONCURRENCY, "bulk-tag") as pool:
            futures = [pool.submit(self._tag_one, event_id, pk, change) for event_id, pk in targets]
            for future in concurrent.futures.as_completed(futures):
                try:
                    outcomes[future.result()] += 1
                except Exception:
                    logger.exception("bulk tag: an event could not be updated")
                    outcomes["failed"] += 1
        return outcomes

    def _tag_one(self, event_id: str, pk: str, change: TagChange) -> str:
        current = read_or_none(self._events, event_id, pk)
        if current is None:
            return "unchanged"  # deleted (expired) since the search

        def mutate(document: dict[str, Any]) -> bool:
            before = list(document.get("tags") or [])
            after = apply_tags(before, change.add, change.remove)
            document["tags"] = after
            return after != before

        try:
            _, changed = self.update(current, mutate)
        except TagLimitError:
            return "skipped"
        except ApiProblem as problem:
            if problem.status == 404:
                return "unchanged"
            raise
        return "updated" if changed else "unchanged"
