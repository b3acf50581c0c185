"""Remove secrets from text before it reaches a log line or an HTTP body."""

from __future__ import annotations

import re

_SENSITIVE_FIELD_NAMES = (
    r"AccountKey|SharedAccessSignature|SharedAccessKey|password|client_secret|x-functions-key|api-key"
    r"|access_token|refresh_token"
)
_SECRET_PATTERNS = (
    # name=value, name: value, "name": "value", 'name': 'value' (connection strings, headers, JSON, dicts)
    re.compile(rf"""(?i)(?P<keep>["']?\b(?:{_SENSITIVE_FIELD_NAMES})["']?\s*[:=]\s*["']?)[^"'\s;&,}}]+"""),
    re.compile(r"(?i)(?P<keep>[?&](?:sig|code|token)=)[^&\s\"']+"),
    re.compile(r"(?i)(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?P<keep>)eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    # webhook URLs whose path is the secret: Slack, Office 365 connectors, Discord
    re.compile(
        r"(?i)(?P<keep>\b(?:hooks\.slack\.com|[a-z0-9-]+\.webhook\.office\.com|discord(?:app)?\.com/api/webhooks)"
        r"(?::\d+)?/)[^\s\"'<>]+"
    ),
)


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\g<keep>***", text)
    return text
