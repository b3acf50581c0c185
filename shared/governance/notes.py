"""The notes rule and the notes remediation writes, as pure functions.

The rule (the seed's, made precise). A service principal's `notes` passes when:

1. it holds at least one entry: the text is split on `,` and `;`, whitespace around each entry is
   ignored and empty entries (`a@x.com;;`, a trailing `;`) are skipped;
2. every entry is shaped like a UPN (`name@domain.tld`, no whitespace);
3. every UPN, compared ignoring case, is an *accountable owner*: a user among the owners read with the
   object (the service principal's owners and, when the app is registered in this tenant, the
   application's), with accountEnabled true, and a member (userType Member; guests too with
   `allow_guests`). An owner whose accountEnabled was not read is "state-unknown", never a pass.
   "Exists in the directory" is therefore "Graph returned it as an owner just now".

With `require_owner: false` a UPN that is not an owner may instead be a user that the caller's
`DirectoryLookup` finds, enabled and a member; without a lookup such a UPN is "not-verified" (a
failure). The pipeline can look the UPNs up in one Graph call before evaluating
(`parse_notes(...).upns`, GET /v1.0/users?$filter=userPrincipalName in (...)&$select=id,
userPrincipalName,accountEnabled,userType) and pass a `MappingDirectory`, which keeps evaluation pure.

Remediation (`plan_notes_remediation`), in the seed's order: keep the current notes when they already
pass; else the last-known-good notes if they still pass against the object as it is now; else a value
built from the accountable owners (`notes_from_owners`); else nothing ("cannot remediate").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from shared.governance.config import NotesParameters
from shared.governance.model import DirectoryPrincipal, GovernedObject

MAX_NOTES_CHARS = 1024  # Graph's limit on servicePrincipal.notes
NOTES_SEPARATORS = re.compile(r"[,;]")
NOTES_JOINER = ", "
UPN = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")

NotesReason = Literal[
    "empty",  # no entry at all
    "not-a-upn",  # the entry is not shaped like name@domain.tld
    "not-an-owner",  # a UPN that is no owner of the object (require_owner)
    "disabled",  # the owner or user has accountEnabled false
    "guest",  # the owner or user is a guest (and guests are not allowed)
    "state-unknown",  # accountEnabled was not read: not known to be enabled
    "not-found",  # require_owner off: the directory lookup has no such user
    "not-verified",  # require_owner off and no directory lookup supplied
    "not-a-user",  # the directory lookup found something that is not a user
]
_REASON_TEXT: dict[str, str] = {
    "empty": "the notes are empty",
    "not-a-upn": "is not a UPN",
    "not-an-owner": "is not an owner",
    "disabled": "is disabled",
    "guest": "is a guest",
    "state-unknown": "could not be read as enabled",
    "not-found": "is not in the directory",
    "not-verified": "could not be looked up",
    "not-a-user": "is not a user",
}


class ParsedNotes(BaseModel):
    """The entries of a notes value: `upns` (first spelling of each, duplicates ignoring case dropped,
    in order) and `invalid` (entries that are not UPN-shaped, in order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upns: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.upns and not self.invalid


def parse_notes(notes: str | None) -> ParsedNotes:
    upns: list[str] = []
    invalid: list[str] = []
    seen: set[str] = set()
    for raw in NOTES_SEPARATORS.split(notes or ""):
        entry = raw.strip()
        if not entry:
            continue
        if not UPN.match(entry):
            invalid.append(entry)
        elif entry.casefold() not in seen:
            seen.add(entry.casefold())
            upns.append(entry)
    return ParsedNotes(upns=tuple(upns), invalid=tuple(invalid))


class DirectoryLookup(Protocol):
    """Finds a user by UPN (ignoring case), for notes entries that are not owners."""

    def user_by_upn(self, upn: str) -> DirectoryPrincipal | None: ...


class MappingDirectory:
    """A DirectoryLookup over users already read (e.g. one Graph call for every UPN in a batch's notes)."""

    def __init__(self, users: Iterable[DirectoryPrincipal]) -> None:
        self._by_upn = {u.user_principal_name.casefold(): u for u in users if u.user_principal_name}

    def user_by_upn(self, upn: str) -> DirectoryPrincipal | None:
        return self._by_upn.get(upn.casefold())


class NotesProblem(BaseModel):
    """Why one notes entry (or the whole value, for "empty") fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: str
    reason: NotesReason

    def describe(self) -> str:
        if self.reason == "empty":
            return _REASON_TEXT["empty"]
        return f"{self.entry!r} {_REASON_TEXT[self.reason]}"


def _standing_reason(principal: DirectoryPrincipal, allow_guests: bool) -> NotesReason | None:
    if principal.kind != "user":
        return "not-a-user"
    standing = principal.standing(allow_guests=allow_guests)
    if standing == "accountable":
        return None
    if standing == "disabled":
        return "disabled"
    if standing == "guest":
        return "guest"
    return "state-unknown"


def notes_problems(
    notes: str | None,
    obj: GovernedObject,
    parameters: NotesParameters | None = None,
    directory: DirectoryLookup | None = None,
) -> tuple[NotesProblem, ...]:
    """Every reason `notes` fails the rule for `obj` (empty when it passes), entries in notes order."""
    params = parameters or NotesParameters()
    parsed = parse_notes(notes)
    if parsed.empty:
        return (NotesProblem(entry="", reason="empty"),)
    problems = [NotesProblem(entry=entry, reason="not-a-upn") for entry in parsed.invalid]
    owners = {
        o.user_principal_name.casefold(): o
        for o in obj.all_owners()
        if o.kind == "user" and o.user_principal_name
    }
    for upn in parsed.upns:
        owner = owners.get(upn.casefold())
        reason: NotesReason | None
        if owner is not None:
            reason = _standing_reason(owner, params.allow_guests)
        elif params.require_owner:
            reason = "not-an-owner"
        elif directory is None:
            reason = "not-verified"
        else:
            user = directory.user_by_upn(upn)
            reason = "not-found" if user is None else _standing_reason(user, params.allow_guests)
        if reason is not None:
            problems.append(NotesProblem(entry=upn, reason=reason))
    return tuple(problems)


def notes_from_owners(obj: GovernedObject, *, allow_guests: bool = False) -> str | None:
    """The notes value built from the object's accountable owners: their UPNs as the directory spells
    them, one per person (duplicates ignoring case dropped), sorted ignoring case, joined with ", ". Only
    whole UPNs are written: when they do not all fit in Graph's 1,024 characters, the first that fit in
    that order are kept (each still names an accountable owner, so the value passes). None when no
    accountable owner has a UPN."""
    upns: dict[str, str] = {}
    for owner in obj.accountable_owners(allow_guests=allow_guests):
        upn = owner.user_principal_name
        if upn and UPN.match(upn) and upn.casefold() not in upns:
            upns[upn.casefold()] = upn
    value = ""
    for key in sorted(upns):
        candidate = f"{value}{NOTES_JOINER}{upns[key]}" if value else upns[key]
        if len(candidate) > MAX_NOTES_CHARS:
            break
        value = candidate
    return value or None


def last_known_good_acceptable(
    value: str | None,
    obj: GovernedObject,
    parameters: NotesParameters | None = None,
    directory: DirectoryLookup | None = None,
) -> bool:
    """Whether a last-known-good notes value may be written back now: it fits Graph's limit and passes
    the rule against the object as it is now (its owners may have changed since it was good)."""
    if value is None or len(value) > MAX_NOTES_CHARS:
        return False
    return not notes_problems(value, obj, parameters, directory)


class NotesRemediation(BaseModel):
    """What remediation would write to the service principal's notes.

    `value` None means "cannot remediate". `unchanged` means the value is already the current notes, so
    no PATCH is needed (the update is idempotent). `source` says where the value came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str | None
    source: Literal["current", "last-known-good", "owners"] | None
    unchanged: bool
    reason: str


def plan_notes_remediation(
    obj: GovernedObject,
    last_known_good: str | None = None,
    parameters: NotesParameters | None = None,
    directory: DirectoryLookup | None = None,
) -> NotesRemediation:
    """The notes value to write, in the seed's order (current if it passes, last-known-good, owners)."""
    params = parameters or NotesParameters()
    current = obj.notes
    if current is not None and last_known_good_acceptable(current, obj, params, directory):
        return NotesRemediation(
            value=current, source="current", unchanged=True, reason="the notes already pass"
        )
    if last_known_good is not None and last_known_good_acceptable(last_known_good, obj, params, directory):
        return NotesRemediation(
            value=last_known_good,
            source="last-known-good",
            unchanged=last_known_good == current,
            reason="restored from the last-known-good state",
        )
    built = notes_from_owners(obj, allow_guests=params.allow_guests)
    if built is not None:
        return NotesRemediation(
            value=built,
            source="owners",
            unchanged=built == current,
            reason="built from the accountable owners",
        )
    why = "no accountable owner with a UPN"
    if last_known_good is not None:
        why += ", and the last-known-good notes no longer pass"
    return NotesRemediation(value=None, source=None, unchanged=False, reason=f"cannot remediate: {why}")
