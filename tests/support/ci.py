"""The one rule for a missing local service: a failure under CI=true, a skip on a developer machine."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def service_missing(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"the local services are required under CI=true: {reason}")
    pytest.skip(f"local services unavailable (run `make install`): {reason}")
