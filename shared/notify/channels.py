"""Notification channels, from the ALERT_CHANNELS setting (a JSON list; in Azure a Key Vault reference,
since a webhook URL is itself a credential)."""

from __future__ import annotations

import json
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.rules.model import SEVERITY_ORDER, Severity

ChannelType = Literal["teams", "slack", "webhook"]

# Per channel, per instance: Teams Workflows webhooks take about 4 requests a second, Slack 1 a second.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_RATE_PER_SECOND: dict[str, float] = {"teams": 4.0, "slack": 1.0, "webhook": 10.0}


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    type: ChannelType
    url: SecretStr
    min_severity: Severity = "medium"
    rules: list[str] = Field(default_factory=list)  # empty: every rule
    secret: SecretStr | None = None  # webhook only: HMAC-SHA256 signing key
    rate_per_second: float | None = Field(default=None, gt=0, le=100)

    @field_validator("url")
    @classmethod
    def _https(cls, value: SecretStr) -> SecretStr:
        try:
            parts = urlsplit(value.get_secret_value())
            host = parts.hostname
        except ValueError:
            raise ValueError("a channel url must be an absolute https:// URL") from None
        loopback = parts.scheme == "http" and host in LOOPBACK_HOSTS and not parts.username
        if not host or not (parts.scheme == "https" or loopback):
            raise ValueError("a channel url must be https:// (plain http only to 127.0.0.1 / localhost)")
        return value

    @model_validator(mode="after")
    def _secret_is_for_webhooks(self) -> ChannelConfig:
        if self.secret is not None and self.type != "webhook":
            raise ValueError("secret signs generic webhooks only; Teams and Slack URLs carry their own")
        return self

    @property
    def rate(self) -> float:
        return self.rate_per_second or DEFAULT_RATE_PER_SECOND[self.type]

    def wants(self, rule_id: str, severity: str) -> bool:
        if SEVERITY_ORDER[severity] < SEVERITY_ORDER[self.min_severity]:
            return False
        return not self.rules or rule_id in self.rules


_CHANNEL_LIST = TypeAdapter(list[ChannelConfig])


def parse_channels(text: str | None) -> list[ChannelConfig]:
    """ALERT_CHANNELS: `[{"name": "secops", "type": "teams", "url": "https://...", "min_severity": "high"}]`.

    The error names the channel and field but never echoes a URL or secret.
    """
    if not text or not text.strip():
        return []
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("ALERT_CHANNELS must be a JSON list of channels") from None
    try:
        channels = _CHANNEL_LIST.validate_python(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in error["loc"])
            problems.append(f"ALERT_CHANNELS[{loc}]: {error['msg']}")
        raise ValueError("; ".join(problems)) from None
    names = [c.name for c in channels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"ALERT_CHANNELS: channel names must be unique: {', '.join(duplicates)}")
    return channels
