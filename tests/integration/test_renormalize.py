"""`python -m shared.app.cli renormalize` against Azurite and cosmosdb-server: events stored with an older
attribution take the current normalizer's fields, and keep what analysts added (tags, comments), when
they were first ingested, and facet counts that follow the new values."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from shared.api.event_annotations import EventAnnotator
from shared.api.events_models import TagChange
from shared.app.cli import renormalize
from shared.app.runtime import event_store, reset_runtime
from shared.ingestion.archive import RawArchive, raw_blob_name
from shared.ingestion.event_store import facet_values
from shared.ingestion.events import RawRef
from shared.ingestion.normalize import normalize_record
from shared.platform.clients import get_clients, reset_clients
from shared.platform.cosmos import read_or_none
from shared.platform.resources import CosmosContainers

SOURCE = "o365_management"
FIRST_INGESTED_AT = "2026-11-19T10:00:00.000Z"
COSMOS_FIELDS = ("_rid", "_self", "_etag", "_attachments", "_ts")


@pytest.fixture
def tenant(app_environment: dict[str, str]) -> Iterator[str]:
    """A tenant of its own (its own partitions and facets), with enrichment off: no Graph to ask."""
    tenant_id = str(uuid.uuid4())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("M365_TENANT_ID", tenant_id)
        patch.setenv("ENRICHMENT_ENABLED", "false")
        reset_clients()
        reset_runtime()
        yield tenant_id
    reset_clients()
    reset_runtime()


def _sts_logon(tenant_id: str) -> dict[str, Any]:
    """An STS logon (RecordType 15) as the Azure AD STS logon schema documents it."""
    return {
        "CreationTime": "2026-11-19T08:14:02",
        "Id": str(uuid.uuid4()),
        "Operation": "UserLoggedIn",
        "OrganizationId": tenant_id,
        "RecordType": 15,
        "ResultStatus": "Success",
        "UserKey": "10032001A2B3C4D5@contoso.onmicrosoft.com",
        "UserType": 0,
        "Version": 1,
        "Workload": "AzureActiveDirectory",
        "ClientIP": "203.0.113.24",
        "ObjectId": "00000002-0000-0ff1-ce00-000000000000",
        "UserId": "adele.vance@contoso.onmicrosoft.com",
        "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": [
            {"Name": "ResultStatusDetail", "Value": "Redirect"},
            {"Name": "UserAgent", "Value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/120.0"},
            {"Name": "RequestType", "Value": "OAuth2:Authorize"},
        ],
        "ModifiedProperties": [],
        "Actor": [
            {"ID": "6f0b9c2e-4d1a-4e83-9a57-2c8e1f3b7d40", "Type": 0},
            {"ID": "adele.vance@contoso.onmicrosoft.com", "Type": 5},
            {"ID": "10032001A2B3C4D5", "Type": 3},
        ],
        "ActorContextId": tenant_id,
        "ActorIpAddress": "203.0.113.24",
        "InterSystemsId": str(uuid.uuid4()),
        "IntraSystemId": str(uuid.uuid4()),
        "SupportTicketId": "",
        "Target": [{"ID": "00000002-0000-0ff1-ce00-000000000000", "Type": 0}],
        "TargetContextId": tenant_id,
        "ApplicationId": "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7",
        "ErrorNumber": "0",
    }


def _app_only_mail_access(tenant_id: str) -> dict[str, Any]:
    """MailItemsAccessed by an application (UserType 5) on another user's mailbox."""
    return {
        "CreationTime": "2026-11-19T09:02:11",
        "Id": str(uuid.uuid4()),
        "Operation": "MailItemsAccessed",
        "OrganizationId": tenant_id,
        "RecordType": 50,
        "ResultStatus": "Succeeded",
        "UserKey": "10037FFE8A1B2C3D",
        "UserType": 5,
        "Version": 1,
        "Workload": "Exchange",
        "UserId": "megan.bowen@contoso.onmicrosoft.com",
        "AppId": "5b7c2e41-9a3d-4f60-8e1b-7d2c4a9f0e63",
        "ClientAppId": "5b7c2e41-9a3d-4f60-8e1b-7d2c4a9f0e63",
        "AppAccessContext": {
            "ClientAppId": "5b7c2e41-9a3d-4f60-8e1b-7d2c4a9f0e63",
            "ClientAppName": "Contoso Mail Archiver",
        },
        "ClientIPAddress": "198.51.100.7",
        "ExternalAccess": False,
        "InternalLogonType": 0,
        "LogonType": 0,
        "MailboxGuid": "3e9d7a15-0c4b-4f2e-b861-5a7f2d9c1e08",
        "MailboxOwnerUPN": "megan.bowen@contoso.onmicrosoft.com",
        "OperationProperties": [{"Name": "MailAccessType", "Value": "Bind"}],
        "OrganizationName": "contoso.onmicrosoft.com",
        "OperationCount": 3,
    }


def _as_stored_before(document: dict[str, Any], actor: dict[str, Any], summary: str) -> dict[str, Any]:
    """The event as the normalizer before issue 15 stored it: PUID or mailbox owner as the actor, no
    client application, no result code, no targets."""
    old = {k: v for k, v in document.items() if k not in ("result_code", "signin", "dlp", "security_alert")}
    return {**old, "actor": actor, "targets": [], "summary": summary, "ingested_at": FIRST_INGESTED_AT}


def _read(document: dict[str, Any]) -> dict[str, Any]:
    container = get_clients().cosmos_container(CosmosContainers.EVENTS.name)
    stored = read_or_none(container, document["id"], document["pk"])
    assert stored is not None
    return stored


def _stored(document: dict[str, Any]) -> dict[str, Any]:
    """The stored event without Cosmos's system properties."""
    return {k: v for k, v in _read(document).items() if k not in COSMOS_FIELDS}


def test_renormalize_re_attributes_stored_events_and_keeps_what_analysts_added(tenant: str) -> None:
    clients = get_clients()
    archive = RawArchive(clients.blob_service)
    run_id = uuid.uuid4().hex[:12]
    run_started = dt.datetime.now(dt.UTC)
    pages = {
        "Audit.AzureActiveDirectory": _sts_logon(tenant),
        "Audit.Exchange": _app_only_mail_access(tenant),
    }
    fresh: list[dict[str, Any]] = []
    for page, (content_type, record) in enumerate(pages.items(), start=1):
        blob = raw_blob_name(f"{SOURCE}/{content_type}", run_started, run_id, page)
        archive.write_page(blob, [record])
        fresh.append(
            normalize_record(
                SOURCE,
                record,
                tenant_id=tenant,
                ingested_at=FIRST_INGESTED_AT,
                raw_ref=RawRef(blob=blob, line=1),
            )
        )
    logon, mail_access = fresh
    before = [
        _as_stored_before(
            logon,
            {
                "type": "user",
                "id": "10032001A2B3C4D5@contoso.onmicrosoft.com",
                "upn": "adele.vance@contoso.onmicrosoft.com",
                "display": None,
                "ip": "203.0.113.24",
            },
            "adele.vance@contoso.onmicrosoft.com performed 'UserLoggedIn'",
        ),
        _as_stored_before(
            mail_access,
            {
                "type": "user",
                "id": "10037FFE8A1B2C3D",
                "upn": None,
                "display": "megan.bowen@contoso.onmicrosoft.com",
                "ip": "198.51.100.7",
            },
            "user performed MailItemsAccessed on user",
        ),
    ]
    store = event_store()
    assert len(store.write_events(before)) == 2
    store.update_facets(tenant, before, [], FIRST_INGESTED_AT, shard_key="before")

    annotator = EventAnnotator(clients.cosmos_container(CosmosContainers.EVENTS.name))
    assert annotator.tag_all([(mail_access["id"], mail_access["pk"])], TagChange(add=["incident-4711"])) == {
        "updated": 1
    }
    comment = {"id": "c1", "author": "ana@contoso.com", "at": "2026-11-19T11:00:00.000Z", "text": "archiver"}

    def add_comment(current: dict[str, Any]) -> bool:
        current.setdefault("comments", []).append(comment)
        return True

    annotator.update(_read(mail_access), add_comment)

    totals = renormalize(run_started - dt.timedelta(minutes=5), source=SOURCE, run_id=run_id)

    assert totals == {"pages": 2, "records": 2, "stored": 2, "new": 0, "quarantined": 0}
    for expected in fresh:
        stored = _stored(expected)
        derived = {k: v for k, v in stored.items() if k not in ("tags", "comments")}
        assert derived == {k: v for k, v in expected.items() if k != "tags"}, "the normalizer's fields win"
        assert stored["ingested_at"] == FIRST_INGESTED_AT
    assert _stored(logon)["tags"] == []
    assert "comments" not in _stored(logon)
    assert _stored(mail_access)["tags"] == ["incident-4711"]
    assert _stored(mail_access)["comments"] == [comment]
    assert [_stored(e)["actor"] for e in fresh] != [b["actor"] for b in before]

    expected_facets: dict[str, Counter[str]] = {}
    for document in fresh:
        for facet, value in facet_values(document):
            expected_facets.setdefault(facet, Counter())[value] += 1
    assert store.read_facets(tenant) == {f: dict(c) for f, c in expected_facets.items()}, (
        "the facet counts moved to the new values; the old ones are gone"
    )
