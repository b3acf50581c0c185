"""A missing local service fails the test under CI=true and only skips it elsewhere."""

from __future__ import annotations

import pytest

from tests.support import ci


def test_missing_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ci, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="required under CI=true: azurite"):
        ci.service_missing("azurite")


def test_missing_service_skips_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ci, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="run `make install`"):
        ci.service_missing("azurite")
