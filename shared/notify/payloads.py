"""Alert -> JSON payload for each notification channel (Teams, Slack, generic webhook), and webhook signing.

Pure functions: nothing here performs I/O. encode_body() is the exact serialization that is sent, and the
one the Teams size limit is measured against.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["informational", "low", "medium", "high", "critical"]

ELLIPSIS = "…"

TEAMS_MAX_BYTES = 28 * 1024
TEAMS_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"

SLACK_MAX_BLOCKS = 50
SLACK_MAX_HEADER_CHARS = 150
SLACK_MAX_SECTION_CHARS = 3000
SLACK_MAX_FIELDS = 10
SLACK_MAX_FIELD_CHARS = 2000
SLACK_MAX_URL_CHARS = 3000

WEBHOOK_TYPE = "aoc.alert"
WEBHOOK_VERSION = 1
SIGNATURE_HEADER = "X-AOC-Signature"
TIMESTAMP_HEADER = "X-AOC-Timestamp"
DEFAULT_TOLERANCE_SECONDS = 300

_TEAMS_COLORS: dict[str, str] = {
    "critical": "attention",
    "high": "attention",
    "medium": "warning",
    "low": "default",
    "informational": "default",
}
_TEAMS_MAX_TITLE_CHARS = 1000
_TEAMS_MIN_TITLE_CHARS = 100
_SLACK_MAX_LABEL_CHARS = 200
_SLACK_MAX_CONTEXT_CHARS = 300
_SIGNATURE_RE = re.compile(r"sha256=([0-9a-f]{64})", re.ASCII | re.IGNORECASE)
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}", re.ASCII)


class NotificationContent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    rule_id: str
    title: str
    severity: Severity
    description: str = ""
    mitre: list[str] = Field(default_factory=list)
    status: str = "open"
    occurrences: int = Field(default=1, ge=1)
    first_seen: str
    last_seen: str
    tenant_id: str
    group_key: str | None = None
    facts: list[tuple[str, str]] = Field(default_factory=list)
    link: str | None = None
    round: int = Field(default=1, ge=1)


class PayloadTooLargeError(ValueError):
    pass


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1] + ELLIPSIS


def _summary_facts(content: NotificationContent) -> list[tuple[str, str]]:
    facts = [
        ("Occurrences", str(content.occurrences)),
        ("First seen", content.first_seen),
        ("Last seen", content.last_seen),
    ]
    if content.mitre:
        facts.append(("MITRE ATT&CK", ", ".join(content.mitre)))
    if content.group_key:
        facts.append(("Grouped by", content.group_key))
    return facts


def _subtitle(content: NotificationContent) -> str:
    parts = [f"Severity: {content.severity.upper()}", f"Status: {content.status}", f"Rule: {content.rule_id}"]
    if content.round > 1:
        parts.append(f"Reminder {content.round}")
    return " · ".join(parts)


# --- Microsoft Teams (Workflows webhook, Adaptive Card) ---------------------------------------------------


@dataclass(frozen=True)
class _CardText:
    """The parts of a Teams card that may be shortened to respect the size limit."""

    title: str
    subtitle: str
    description: str
    facts: tuple[tuple[str, str], ...]


def _adaptive_card(text: _CardText, severity: Severity, link: str | None) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": text.title,
            "weight": "bolder",
            "size": "medium",
            "wrap": True,
            "color": _TEAMS_COLORS[severity],
        },
        {"type": "TextBlock", "text": text.subtitle, "isSubtle": True, "spacing": "none", "wrap": True},
    ]
    if text.description:
        body.append({"type": "TextBlock", "text": text.description, "wrap": True})
    if text.facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in text.facts]})
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open alert", "url": link}]
    return card


def _teams_message(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{"contentType": TEAMS_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def _largest_fitting(fits: Callable[[int], bool], low: int, high: int) -> int | None:
    if not fits(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


_Shrink = Callable[[_CardText, int], _CardText]


def _shrink_steps(text: _CardText) -> Iterator[tuple[_Shrink, int, int]]:
    """(shrink, smallest, largest setting) in the order content is given up: description, fact values,
    fact labels, trailing facts, and last the title (never below _TEAMS_MIN_TITLE_CHARS)."""
    longest_value = max((len(v) for _, v in text.facts), default=0)
    longest_label = max((len(k) for k, _ in text.facts), default=0)
    yield (lambda t, n: replace(t, description=_clip(t.description, n))), 0, len(text.description)
    yield (lambda t, n: replace(t, facts=tuple((k, _clip(v, n)) for k, v in t.facts))), 0, longest_value
    yield (lambda t, n: replace(t, facts=tuple((_clip(k, n), v) for k, v in t.facts))), 0, longest_label
    yield (lambda t, n: replace(t, facts=t.facts[:n])), 0, len(text.facts)
    yield (
        (lambda t, n: replace(t, title=_clip(t.title, n), subtitle=_clip(t.subtitle, n))),
        _TEAMS_MIN_TITLE_CHARS,
        max(len(text.title), len(text.subtitle), _TEAMS_MIN_TITLE_CHARS),
    )


def _shrink_to_fit(
    text: _CardText, shrink: _Shrink, low: int, high: int, fits: Callable[[_CardText], bool]
) -> _CardText:
    setting = _largest_fitting(lambda n: fits(shrink(text, n)), low, high)
    return shrink(text, low if setting is None else setting)


def teams_payload(content: NotificationContent, *, max_bytes: int = TEAMS_MAX_BYTES) -> dict[str, Any]:
    """A Teams Workflows webhook message whose encode_body() is at most max_bytes.

    Raises PayloadTooLargeError only when the link alone leaves no room for a card.
    """

    def build(t: _CardText) -> dict[str, Any]:
        return _teams_message(_adaptive_card(t, content.severity, content.link))

    def fits(t: _CardText) -> bool:
        return len(encode_body(build(t))) <= max_bytes

    # No text longer than max_bytes characters can fit: cutting first bounds the work below.
    text = _CardText(
        title=_clip(content.title, _TEAMS_MAX_TITLE_CHARS),
        subtitle=_clip(_subtitle(content), _TEAMS_MAX_TITLE_CHARS),
        description=_clip(content.description, max_bytes),
        facts=tuple(
            (_clip(k, max_bytes), _clip(v, max_bytes))
            for k, v in [*content.facts, *_summary_facts(content), ("Tenant", content.tenant_id)]
        ),
    )
    for shrink, low, high in _shrink_steps(text):
        if fits(text):
            return build(text)
        text = _shrink_to_fit(text, shrink, low, high, fits)
    if fits(text):
        return build(text)
    raise PayloadTooLargeError(f"no Teams message for alert {content.alert_id} fits in {max_bytes} bytes")


# --- Slack (incoming webhook, Block Kit) ------------------------------------------------------------------


def escape_mrkdwn(text: str) -> str:
    """Slack's required escaping: otherwise user-controlled text could form <@U…> mentions or <url|links>."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int) -> str:
    escaped = escape_mrkdwn(text[: limit + 1])
    if len(escaped) <= limit:
        return escaped
    if limit <= 0:
        return ""
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # never leave half an entity such as "&am"
    return cut + ELLIPSIS


def _slack_field(label: str, value: str) -> dict[str, str]:
    head = f"*{_mrkdwn(label, _SLACK_MAX_LABEL_CHARS)}*\n"
    return {"type": "mrkdwn", "text": head + _mrkdwn(value, SLACK_MAX_FIELD_CHARS - len(head))}


def _slack_field_sections(content: NotificationContent, max_sections: int) -> list[dict[str, Any]]:
    fields = [_slack_field(k, v) for k, v in [*content.facts, *_summary_facts(content)]]
    chunks = [fields[i : i + SLACK_MAX_FIELDS] for i in range(0, len(fields), SLACK_MAX_FIELDS)]
    return [{"type": "section", "fields": chunk} for chunk in chunks[:max_sections]]


def _slack_context(content: NotificationContent) -> dict[str, Any]:
    items = [
        f"Rule: {content.rule_id}",
        f"Tenant: {content.tenant_id}",
        f"Alert: {content.alert_id}",
        f"Status: {content.status}",
    ]
    if content.round > 1:
        items.append(f"Reminder {content.round}")
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _mrkdwn(i, _SLACK_MAX_CONTEXT_CHARS)} for i in items],
    }


def _slack_actions(link: str) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": "open_alert",
        "text": {"type": "plain_text", "text": "Open alert"},
        "url": link,
    }
    return {"type": "actions", "elements": [button]}


def slack_payload(content: NotificationContent) -> dict[str, Any]:
    headline = f"[{content.severity.upper()}] {content.title}"
    head: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, SLACK_MAX_HEADER_CHARS)}}
    ]
    if content.description:
        text = _mrkdwn(content.description, SLACK_MAX_SECTION_CHARS)
        head.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    # Slack rejects the whole message for an over-long button URL; the alert id stays in the context line.
    link = content.link if content.link and len(content.link) <= SLACK_MAX_URL_CHARS else None
    tail = [_slack_context(content), *([_slack_actions(link)] if link else [])]
    fields = _slack_field_sections(content, SLACK_MAX_BLOCKS - len(head) - len(tail))
    return {"text": _mrkdwn(headline, SLACK_MAX_SECTION_CHARS), "blocks": [*head, *fields, *tail]}


# --- Generic webhook --------------------------------------------------------------------------------------


def webhook_payload(content: NotificationContent) -> dict[str, Any]:
    alert = content.model_dump(mode="json")
    alert["facts"] = [{"name": name, "value": value} for name, value in content.facts]
    return {"type": WEBHOOK_TYPE, "version": WEBHOOK_VERSION, "alert": alert}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    if not secret:
        raise ValueError("the webhook signing secret is empty")
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now_unix: float) -> dict[str, str]:
    timestamp = math.floor(now_unix)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify_signature(
    secret: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now_unix: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """The timestamp window rejects replays of a captured request; both directions, to allow clock skew."""
    if not secret or timestamp_header is None or signature_header is None or not math.isfinite(now_unix):
        return False
    timestamp_match = _TIMESTAMP_RE.fullmatch(timestamp_header.strip())
    signature_match = _SIGNATURE_RE.fullmatch(signature_header.strip())
    if timestamp_match is None or signature_match is None:
        return False
    timestamp = int(timestamp_match.group(0))
    if abs(now_unix - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected, "sha256=" + signature_match.group(1).lower())
