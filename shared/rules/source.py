"""Where the rules come from: the file shipped with the app, or a blob that overrides it.

The compiled rule set is cached for `ttl_seconds`; after that the blob's ETag is checked and the rules
are recompiled only when it changed. An override that does not validate is logged and the last good
rule set stays in force, so a typo in the blob never switches alerting off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.platform.clock import Clock
from shared.platform.yaml_bounded import load_yaml_bounded
from shared.rules.engine import BusinessHours, RuleSet
from shared.rules.model import RuleError, Scalar, parse_rule_file

logger = logging.getLogger(__name__)

DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.yaml")
RULES_BLOB = "rules.yaml"


@dataclass(frozen=True)
class RuleText:
    text: str
    etag: str
    origin: str


BlobReader = Callable[[], RuleText | None]


def blob_reader(container: ContainerClient, blob_name: str = RULES_BLOB) -> BlobReader:
    """Reads the override blob; None when it does not exist."""

    def read() -> RuleText | None:
        blob = container.get_blob_client(blob_name)
        try:
            downloader = blob.download_blob(encoding="utf-8")
        except ResourceNotFoundError:
            return None
        return RuleText(downloader.readall(), str(downloader.properties.etag), f"blob:{blob_name}")

    return read


def compile_rules(
    text: str,
    hours: BusinessHours,
    origin: str,
    extra_lists: dict[str, list[Scalar]] | None = None,
) -> RuleSet:
    """Parse and compile a rule file's text; RuleError lists every problem.

    The YAML is loaded within shared.platform.yaml_bounded's bounds: a "billion laughs" override blob
    is refused (and the rules in force kept) instead of stalling the alert worker."""
    try:
        document: Any = load_yaml_bounded(text)
    except yaml.YAMLError as exc:
        raise RuleError([f"{origin}: not valid YAML: {str(exc)[:500]}"]) from None
    rule_file = parse_rule_file(document, extra_lists)
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return RuleSet(rule_file, hours, origin=origin, version=version)


class RuleSource:
    def __init__(
        self,
        hours: BusinessHours,
        clock: Clock,
        *,
        default_file: Path = DEFAULT_RULES_FILE,
        override: BlobReader | None = None,
        extra_lists: dict[str, list[Scalar]] | None = None,
        ttl_seconds: float = 60.0,
    ) -> None:
        self._hours = hours
        self._clock = clock
        self._override = override
        self._extra_lists = extra_lists or {}
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        self._lock = threading.Lock()
        self._default = compile_rules(
            default_file.read_text(encoding="utf-8"), hours, f"file:{default_file.name}", self._extra_lists
        )
        self._current = self._default
        self._etag: str | None = None
        self._checked_at: dt.datetime | None = None
        self.last_error: str | None = None

    def current(self) -> RuleSet:
        """The rule set in force, re-read from the blob at most once per `ttl_seconds`."""
        now = self._clock.now()
        with self._lock:
            if self._checked_at is not None and now - self._checked_at < self._ttl:
                return self._current
            self._checked_at = now
            if self._override is None:
                return self._current
            try:
                found = self._override()
            except Exception as exc:  # storage trouble: keep alerting on the rules we have
                logger.warning("could not read the rule override (%s); keeping the rules in force", exc)
                return self._current
            if found is None:
                if self._etag is not None:
                    logger.info("rule override removed; using the default rules")
                self._current, self._etag, self.last_error = self._default, None, None
                return self._current
            if found.etag == self._etag:
                return self._current
            self._etag = found.etag
            try:
                self._current = compile_rules(found.text, self._hours, found.origin, self._extra_lists)
                self.last_error = None
                logger.info("loaded %d rules from %s", len(self._current.compiled), found.origin)
            except RuleError as exc:
                self.last_error = str(exc)
                logger.error("rule override %s refused, keeping the rules in force: %s", found.origin, exc)
            return self._current

    def invalidate(self) -> None:
        """Check the override on the next call (after the API saved a rule)."""
        with self._lock:
            self._checked_at = None
