"""The models of the event routes beyond search (filters, facets, export, tags, comments, bulk tagging)
and the rules their values follow: tag grammar and limits, comment ids."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from shared.api.events_query import EventQuery

SEARCH_PAGE_SIZE = 200  # the largest page EventSearch serves
MAX_TAGS_PER_EVENT = 50
MAX_TAGS_PER_REQUEST = 20
MAX_COMMENTS_PER_EVENT = 100  # keeps an event well under Cosmos DB's 2 MB item limit
PAGING_FIELDS = ("page_size", "continuation")
FILTER_FIELDS = {name for name in EventQuery.model_fields if name not in PAGING_FIELDS}
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]*$"

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=TAG_PATTERN)
]


class EventFilter(EventQuery):
    """The filters of GET /api/events without paging: export and bulk tagging walk every match."""

    page_size: SkipJsonSchema[int] = SEARCH_PAGE_SIZE
    continuation: SkipJsonSchema[str | None] = None

    @field_validator("page_size", "continuation", mode="before")
    @classmethod
    def _no_paging(cls, value: Any) -> Any:
        raise ValueError("paging parameters are not accepted here: every match is returned")

    def criteria(self) -> dict[str, Any]:
        """The filters the caller set, enums as their values; no paging, no export format."""
        return self.model_dump(include=FILTER_FIELDS, exclude_defaults=True)

    def search_query(self) -> EventQuery:
        return EventQuery.model_validate({**self.criteria(), "page_size": SEARCH_PAGE_SIZE})


class ExportQuery(EventFilter):
    format: Literal["jsonl", "csv"] = Field(default="jsonl", description="jsonl (default) or csv")


class FacetQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top: int = Field(default=50, ge=1, le=500, description="values per facet, most frequent first")


class TagChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_REQUEST)
    remove: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_REQUEST)

    @model_validator(mode="after")
    def _meaningful(self) -> TagChange:
        if not self.add and not self.remove:
            raise ValueError("give at least one tag to add or remove")
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(f"a tag cannot be both added and removed: {', '.join(both)}")
        return self


class BulkTagBody(TagChange):
    filter: EventFilter = Field(description="the GET /api/events filters, without paging")


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the comment is empty")
        return value


class CommentOut(BaseModel):
    id: str
    author: str
    author_id: str
    at: str = Field(description="UTC ISO-8601 time of the comment")
    text: str


class FacetValue(BaseModel):
    value: str
    count: int


class FacetsOut(BaseModel):
    facets: dict[str, list[FacetValue]] = Field(description="facet -> values, most frequent first")


class BulkTagResult(BaseModel):
    matched: int = Field(description="events selected by the filter, at most `cap`")
    updated: int = Field(description="events whose tags changed")
    skipped: int = Field(description=f"events left alone: they would exceed {MAX_TAGS_PER_EVENT} tags")
    failed: int = Field(description="events not updated because they kept changing meanwhile")
    truncated: bool = Field(description="more events matched than `cap`")
    cap: int


class TagLimitError(ValueError):
    pass


def apply_tags(tags: Sequence[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """The tags after the change, in order: kept ones first, then new ones. Refuses to grow past 50."""
    removed = set(remove)
    kept = [t for t in dict.fromkeys(tags) if t not in removed]
    result = kept + [t for t in dict.fromkeys(add) if t not in kept]
    if len(result) > MAX_TAGS_PER_EVENT and len(result) > len(tags):
        raise TagLimitError(f"an event holds at most {MAX_TAGS_PER_EVENT} tags")
    return result


def comment_id(subject: str, idempotency_key: str | None) -> str:
    """Random; or, with an Idempotency-Key, the same for every retry of one caller's request."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{subject}|{idempotency_key}".encode()).hexdigest()[:32]
