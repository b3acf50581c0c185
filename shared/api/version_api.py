"""What GET /api/version answers: the app's version and the commit it was built from.

The version is the project's (pyproject.toml `[project] version`; the deployed package leaves
pyproject.toml out, so it is written here too and tests/unit/test_events_histogram.py keeps the two
equal). The commit is whatever the deployment says (the AOC_COMMIT setting), or null.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

APP_VERSION = "0.1.0"


class VersionOut(BaseModel):
    version: str = Field(description="the app's version (pyproject.toml)")
    commit: str | None = Field(description="the commit the deployment was built from (AOC_COMMIT), or null")


def version_info(commit: str | None = None) -> VersionOut:
    """The version document; a blank commit is no commit."""
    commit = commit.strip() if commit else None
    return VersionOut(version=APP_VERSION, commit=commit or None)
