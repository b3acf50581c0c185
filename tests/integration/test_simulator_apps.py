"""The tenant simulator's applications and service principals over HTTP: delta rounds, reads, $batch,
PATCH of notes, the /_sim/apps controls and the directoryAudits they produce, 410 Gone and throttling.

Every expectation comes from the simulator's own truth (`GET /_sim/apps/truth`) or from an earlier answer
of the API under test, never from numbers written here.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from devtools.simulator import TenantSimulator
from tests.support.simulator_client import GRAPH_SCOPE, client_token, simulator_at

EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY = 86_400.0
PAGE = 200  # Graph's page of directory delta
SP_SELECT = "id,appId,displayName,notes,accountEnabled,passwordCredentials,keyCredentials"
CERTIFICATES_AND_SECRETS = "Update application \u2013 Certificates and secrets management"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    """Sim time is EPOCH + 1 day: the anchor the credential dates are drawn around."""
    simulator = simulator_at(EPOCH, DAY, events_per_day=200, service_principals=450)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def graph(sim: TenantSimulator) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {client_token(sim, GRAPH_SCOPE)}"
    return session


@pytest.fixture(scope="module")
def pick(sim: TenantSimulator) -> Callable[[Callable[[dict[str, Any]], bool]], dict[str, Any]]:
    """A live principal matching a predicate that no other test of the module has picked."""
    used: set[str] = set()

    def choose(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for principal in truth(sim)["service_principals"]:
            if not principal["deleted"] and principal["id"] not in used and predicate(principal):
                used.add(principal["id"])
                return principal
        raise AssertionError("no unused principal matches")

    return choose


def truth(sim: TenantSimulator) -> dict[str, Any]:
    response = requests.get(f"{sim.base_url}/_sim/apps/truth", timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def control(sim: TenantSimulator, route: str, document: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{sim.base_url}/_sim/apps/{route}", json=document, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def delta_round(session: requests.Session, url: str) -> tuple[list[list[dict[str, Any]]], str]:
    """Every page of one delta round and the round's deltaLink."""
    pages: list[list[dict[str, Any]]] = []
    while True:
        response = session.get(url, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["value"])
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        return pages, body["@odata.deltaLink"]


def items(pages: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for page in pages for item in page}


def audits(sim: TenantSimulator, session: requests.Session) -> dict[str, dict[str, Any]]:
    """The directoryAudits of the last simulated hour, by id."""
    since = (sim.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = f"{sim.graph_base_url}/v1.0/auditLogs/directoryAudits"
    params: dict[str, str] | None = {"$filter": f"activityDateTime ge {since}", "$top": "1000"}
    found: dict[str, dict[str, Any]] = {}
    while url:
        response = session.get(url, params=params, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        found.update({record["id"]: record for record in body["value"]})
        url, params = body.get("@odata.nextLink"), None
    return found


def native(truth_id: str) -> str:
    return truth_id.split(":", 1)[1]


# ---------------------------------------------------------------------------------------------------
# Delta
# ---------------------------------------------------------------------------------------------------


def test_a_tenant_of_5000_principals_is_one_initial_round_of_pages_of_200() -> None:
    simulator = simulator_at(EPOCH, DAY, events_per_day=50, service_principals=5000)
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {client_token(simulator)}"
        pages, delta_link = delta_round(
            session, f"{simulator.graph_base_url}/v1.0/servicePrincipals/delta?$select={SP_SELECT}"
        )
        expected = truth(simulator)
    finally:
        simulator.stop()
    seen = items(pages)
    live = {p["id"] for p in expected["service_principals"] if not p["deleted"]}
    deleted = {p["id"] for p in expected["service_principals"] if p["deleted"]}
    assert expected["live"] == len(live) == 5000
    assert sum(len(page) for page in pages) == len(seen) == len(live) + len(deleted)  # each object once
    assert len(pages) == math.ceil(len(seen) / PAGE)
    assert all(len(page) == PAGE for page in pages[:-1])
    assert {i for i, item in seen.items() if "@removed" not in item} == live
    assert {i for i, item in seen.items() if item.get("@removed") == {"reason": "changed"}} == deleted
    assert all(set(item) == {"id", "@removed"} for item in seen.values() if "@removed" in item)
    assert all(set(item) == set(SP_SELECT.split(",")) for item in seen.values() if "@removed" not in item)
    assert "$deltatoken=" in delta_link


def test_the_first_page_names_its_selection_and_links_the_next(
    sim: TenantSimulator, graph: requests.Session
) -> None:
    response = graph.get(f"{sim.graph_base_url}/v1.0/servicePrincipals/delta", params={"$select": "id,notes"})
    body = response.json()
    assert response.status_code == 200
    assert body["@odata.context"].endswith("/$metadata#servicePrincipals(id,notes)")
    assert body["@odata.nextLink"].startswith(
        f"{sim.graph_base_url}/v1.0/servicePrincipals/delta?$skiptoken="
    )
    assert len(body["value"]) == PAGE
    unknown = graph.get(f"{sim.graph_base_url}/v1.0/servicePrincipals/delta", params={"$select": "id,owners"})
    assert unknown.status_code == 400
    assert "owners" in unknown.json()["error"]["message"]


def test_changes_come_in_the_next_round_only_and_deletions_as_removed(
    sim: TenantSimulator, graph: requests.Session, pick: Callable[..., dict[str, Any]]
) -> None:
    url = f"{sim.graph_base_url}/v1.0/servicePrincipals/delta?$select=id,displayName,notes"
    _, first_link = delta_round(graph, url)
    noted = pick(lambda p: p["kind"] == "line_of_business")
    doomed = pick(lambda p: p["kind"] == "third_party")
    owned = pick(lambda p: p["kind"] == "line_of_business")
    control(sim, "notes", {"object": noted["id"], "notes": "adelev@contoso.onmicrosoft.com"})
    created = control(
        sim, "applications", {"display_name": "Delta Probe", "owners": ["meganb@contoso.onmicrosoft.com"]}
    )
    control(sim, "delete", {"object": doomed["id"]})
    control(sim, "owners", {"object": owned["id"], "owner": "leeg@contoso.onmicrosoft.com", "action": "add"})

    pages, second_link = delta_round(graph, first_link)
    changed = items(pages)
    assert set(changed) == {
        noted["id"],
        created["object"],
        doomed["id"],
    }  # an owner is navigation: not in delta
    assert changed[noted["id"]] == {
        "id": noted["id"],
        "displayName": noted["displayName"],
        "notes": "adelev@contoso.onmicrosoft.com",
    }
    assert changed[created["object"]]["displayName"] == "Delta Probe"
    assert changed[doomed["id"]] == {"id": doomed["id"], "@removed": {"reason": "changed"}}

    later = pick(lambda p: p["kind"] == "line_of_business")
    control(sim, "notes", {"object": later["id"], "notes": "later@contoso.onmicrosoft.com"})
    pages, _ = delta_round(graph, second_link)
    assert set(items(pages)) == {later["id"]}  # the earlier changes are not replayed
    pages, _ = delta_round(graph, first_link)
    assert {noted["id"], created["object"], doomed["id"], later["id"]} <= set(
        items(pages)
    )  # a deltaLink is reusable


def test_a_change_outside_the_selection_is_not_reported(
    sim: TenantSimulator, graph: requests.Session, pick: Callable[..., dict[str, Any]]
) -> None:
    _, link = delta_round(graph, f"{sim.graph_base_url}/v1.0/servicePrincipals/delta?$select=id,displayName")
    principal = pick(lambda p: p["kind"] == "line_of_business")
    control(sim, "notes", {"object": principal["id"], "notes": "someone@contoso.onmicrosoft.com"})
    pages, _ = delta_round(graph, link)
    assert principal["id"] not in items(pages)


def test_applications_delta_reports_a_new_credential(
    sim: TenantSimulator, graph: requests.Session, pick: Callable[..., dict[str, Any]]
) -> None:
    select = "id,appId,passwordCredentials,keyCredentials,signInAudience,verifiedPublisher"
    pages, link = delta_round(graph, f"{sim.graph_base_url}/v1.0/applications/delta?$select={select}")
    principals = truth(sim)["service_principals"]
    assert {i for i, item in items(pages).items() if "@removed" not in item} == {
        p["applicationId"] for p in principals if p["applicationId"] and not p["deleted"]
    }
    principal = pick(lambda p: p["kind"] == "line_of_business" and p["applicationId"] is not None)
    added = control(
        sim,
        "credentials",
        {
            "object": principal["applicationId"],
            "type": "password",
            "lifetime_days": 365,
            "display_name": "long-lived",
        },
    )
    pages, _ = delta_round(graph, link)
    application = items(pages)[principal["applicationId"]]
    secret = next(c for c in application["passwordCredentials"] if c["keyId"] == added["keyId"])
    assert secret["displayName"] == "long-lived"
    assert secret["secretText"] is None
    lifetime = dt.datetime.fromisoformat(secret["endDateTime"]) - dt.datetime.fromisoformat(
        secret["startDateTime"]
    )
    assert lifetime == dt.timedelta(days=365)


def test_an_expired_or_unknown_token_is_410_gone_and_its_location_starts_over(
    sim: TenantSimulator, graph: requests.Session
) -> None:
    url = f"{sim.graph_base_url}/v1.0/servicePrincipals/delta?$select=id,notes"
    first = graph.get(url, timeout=30).json()
    _, delta_link = delta_round(graph, url)
    forged = graph.get(f"{sim.graph_base_url}/v1.0/servicePrincipals/delta?$deltatoken=bm90LWEtdG9rZW4")
    assert forged.status_code == 410
    assert forged.json()["error"]["code"] == "syncStateNotFound"

    assert (
        control(sim, "delta-reset", {"resource": "servicePrincipals"})["reset_epochs"]["servicePrincipals"]
        >= 1
    )
    for stale in (delta_link, first["@odata.nextLink"]):
        gone = graph.get(stale, timeout=30)
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "syncStateNotFound"
        assert gone.headers["Location"] == url  # the round's initial request, $select kept
    pages, fresh_link = delta_round(graph, gone.headers["Location"])
    assert len(items(pages)) == truth(sim)["live"] + truth(sim)["deleted"]  # a full resync
    assert graph.get(fresh_link, timeout=30).status_code == 200


# ---------------------------------------------------------------------------------------------------
# Throttling
# ---------------------------------------------------------------------------------------------------


def test_throttled_calls_carry_retry_after_and_a_client_that_honours_it_completes() -> None:
    simulator = simulator_at(
        EPOCH,
        DAY,
        events_per_day=50,
        service_principals=700,
        throttle_rate=0.3,
        throttle_without_retry_after=0.0,
        retry_after_seconds=0,
    )
    throttled: list[requests.Response] = []
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {client_token(simulator)}"

        def send(method: str, url: str, **kwargs: Any) -> requests.Response:
            while True:
                response = session.request(method, url, timeout=30, **kwargs)
                if response.status_code != 429:
                    return response
                throttled.append(response)
                time.sleep(float(response.headers["Retry-After"]))  # 0 s here: the header is what counts

        url = f"{simulator.graph_base_url}/v1.0/servicePrincipals/delta?$select=id"
        seen: set[str] = set()
        while True:
            body = send("GET", url).json()
            seen.update(item["id"] for item in body["value"])
            if "@odata.nextLink" not in body:
                break
            url = body["@odata.nextLink"]
        principals = truth(simulator)["service_principals"]
        pending = {
            f"r{i}": f"/servicePrincipals/{p['id']}/owners?$select=id" for i, p in enumerate(principals[:20])
        }
        inner_throttles: list[dict[str, Any]] = []
        answers: dict[str, dict[str, Any]] = {}
        while pending:
            requests_ = [{"id": i, "method": "GET", "url": u} for i, u in pending.items()]
            response = send("POST", f"{simulator.graph_base_url}/v1.0/$batch", json={"requests": requests_})
            assert response.status_code == 200, response.text
            for answer in response.json()["responses"]:
                if answer["status"] == 429:
                    inner_throttles.append(answer)
                    continue
                answers[answer["id"]] = answer
                del pending[answer["id"]]
    finally:
        simulator.stop()
    assert seen == {p["id"] for p in principals}
    assert throttled, "the fault plan throttled some calls"
    assert all(
        r.json()["error"]["code"] == "TooManyRequests" and r.headers["Retry-After"] == "0" for r in throttled
    )
    assert inner_throttles, "requests inside a batch are throttled one by one"
    assert all(a["headers"]["Retry-After"] == "0" for a in inner_throttles)
    assert {a["status"] for a in answers.values()} == {200}
    assert len(answers) == 20


# ---------------------------------------------------------------------------------------------------
# Reads and $batch
# ---------------------------------------------------------------------------------------------------


def test_a_principal_its_owners_permissions_roles_and_application_read_as_graph_shapes(
    sim: TenantSimulator, graph: requests.Session
) -> None:
    principals = truth(sim)["service_principals"]
    expected = next(
        p
        for p in principals
        if p["directoryRoles"]
        and p["permissions"]
        and p["owners"]
        and p["applicationId"]
        and not p["deleted"]
    )
    base = f"{sim.graph_base_url}/v1.0/servicePrincipals/{expected['id']}"

    principal = graph.get(base, timeout=30).json()
    assert principal["appId"] == expected["appId"]
    assert principal["notes"] == expected["notes"]
    assert {
        "passwordCredentials",
        "keyCredentials",
        "verifiedPublisher",
        "servicePrincipalType",
        "appOwnerOrganizationId",
        "signInAudience",
        "tags",
        "accountEnabled",
    } <= set(principal)
    by_app_id = graph.get(f"{sim.graph_base_url}/v1.0/servicePrincipals(appId='{expected['appId']}')").json()
    assert by_app_id["id"] == expected["id"]

    owners = graph.get(
        f"{base}/owners", params={"$select": "id,userPrincipalName,accountEnabled,userType"}
    ).json()
    assert [
        (o["id"], o["userPrincipalName"], o["accountEnabled"], o["userType"]) for o in owners["value"]
    ] == [(o["id"], o["userPrincipalName"], o["accountEnabled"], o["userType"]) for o in expected["owners"]]
    assert {o["@odata.type"] for o in owners["value"]} <= {
        "#microsoft.graph.user",
        "#microsoft.graph.servicePrincipal",
    }

    assignments = graph.get(f"{base}/appRoleAssignments").json()["value"]
    resource = graph.get(
        f"{sim.graph_base_url}/v1.0/servicePrincipals/{assignments[0]['resourceId']}",
        params={"$select": "appId,appRoles"},
    ).json()
    values = {role["id"]: role["value"] for role in resource["appRoles"]}
    assert resource["appId"] == "00000003-0000-0000-c000-000000000000"
    assert [values[a["appRoleId"]] for a in assignments] == [p["value"] for p in expected["permissions"]]
    assert {a["principalId"] for a in assignments} == {expected["id"]}

    member_of = graph.get(f"{base}/memberOf").json()["value"]
    roles = [m for m in member_of if m["@odata.type"] == "#microsoft.graph.directoryRole"]
    assert [(r["roleTemplateId"], r["displayName"]) for r in roles] == [
        (r["roleTemplateId"], r["displayName"]) for r in expected["directoryRoles"]
    ]

    application = graph.get(f"{sim.graph_base_url}/v1.0/applications(appId='{expected['appId']}')").json()
    assert application["id"] == expected["applicationId"]
    assert application["signInAudience"] == expected["signInAudience"]
    key_ids = {c["keyId"] for c in (*application["passwordCredentials"], *application["keyCredentials"])}
    assert key_ids == {c["keyId"] for c in expected["credentials"] if c["on"] == "application"}


def test_certificate_keys_deleted_objects_guests_and_bad_requests(
    sim: TenantSimulator, graph: requests.Session
) -> None:
    principals = truth(sim)["service_principals"]
    with_certificate = next(
        p
        for p in principals
        if not p["deleted"]
        and any(c["on"] == "servicePrincipal" and c["type"] == "certificate" for c in p["credentials"])
    )
    url = f"{sim.graph_base_url}/v1.0/servicePrincipals/{with_certificate['id']}"
    assert all(k["key"] is None for k in graph.get(url).json()["keyCredentials"])
    selected = graph.get(url, params={"$select": "id,keyCredentials"}).json()
    assert set(selected) == {"@odata.context", "id", "keyCredentials"}
    assert all(k["key"] and k["type"] == "AsymmetricX509Cert" for k in selected["keyCredentials"])

    deleted = next(p for p in principals if p["deleted"])
    gone = graph.get(f"{sim.graph_base_url}/v1.0/servicePrincipals/{deleted['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "Request_ResourceNotFound"
    assert graph.get(f"{sim.graph_base_url}/v1.0/servicePrincipals/not-a-guid").status_code == 400
    assert graph.get(url, params={"$select": "id,nonsense"}).status_code == 400

    guest = next(u for u in truth(sim)["users"] if u["userType"] == "Guest")
    user = graph.get(
        f"{sim.graph_base_url}/v1.0/users/{quote(guest['userPrincipalName'], safe='@')}",
        params={"$select": "id,userPrincipalName,accountEnabled,userType"},
    ).json()
    assert (user["id"], user["userType"], user["accountEnabled"]) == (
        guest["id"],
        "Guest",
        guest["accountEnabled"],
    )
    assert graph.get(f"{sim.graph_base_url}/v1.0/users/nobody@contoso.onmicrosoft.com").status_code == 404


def test_a_batch_of_20_answers_each_request_as_its_own_call_would(
    sim: TenantSimulator, graph: requests.Session
) -> None:
    principals = [p for p in truth(sim)["service_principals"] if not p["deleted"] and p["applicationId"]][:5]
    urls = []
    for p in principals:
        urls += [
            f"/servicePrincipals/{p['id']}/owners?$select=id,userPrincipalName,accountEnabled,userType",
            f"/servicePrincipals/{p['id']}/appRoleAssignments",
            f"/servicePrincipals/{p['id']}/memberOf",
            f"/applications(appId='{p['appId']}')?$select=id,passwordCredentials,keyCredentials",
        ]
    batch = [{"id": str(i), "method": "GET", "url": url} for i, url in enumerate(urls)]
    before = len(sim.requests())
    response = graph.post(f"{sim.graph_base_url}/v1.0/$batch", json={"requests": batch}, timeout=30)
    assert response.status_code == 200, response.text
    assert len(sim.requests()) == before + 1  # one round trip
    answers = {a["id"]: a for a in response.json()["responses"]}
    assert sorted(answers, key=int) == [r["id"] for r in batch]
    for request in batch:
        direct = graph.get(f"{sim.graph_base_url}/v1.0{request['url']}", timeout=30)
        assert answers[request["id"]]["status"] == direct.status_code == 200
        assert answers[request["id"]]["body"] == direct.json()

    too_many = [
        {"id": str(i), "method": "GET", "url": "/users/adelev@contoso.onmicrosoft.com"} for i in range(21)
    ]
    assert graph.post(f"{sim.graph_base_url}/v1.0/$batch", json={"requests": too_many}).status_code == 400
    twice = [{"id": "a", "method": "GET", "url": "/users/x"}, {"id": "A", "method": "GET", "url": "/users/y"}]
    assert graph.post(f"{sim.graph_base_url}/v1.0/$batch", json={"requests": twice}).status_code == 400
    chained: list[dict[str, Any]] = [
        {"id": "1", "method": "GET", "url": "/servicePrincipals/00000000-0000-4000-8000-000000000001"},
        {"id": "2", "method": "GET", "url": "/users/adelev@contoso.onmicrosoft.com", "dependsOn": ["1"]},
        {
            "id": "3",
            "method": "POST",
            "url": "/$batch",
            "body": {"requests": []},
            "headers": {"Content-Type": "application/json"},
        },
        {"id": "4", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"},
    ]
    answered = graph.post(f"{sim.graph_base_url}/v1.0/$batch", json={"requests": chained}, timeout=30)
    statuses = {a["id"]: a["status"] for a in answered.json()["responses"]}
    assert statuses == {"1": 404, "2": 424, "3": 400, "4": 400}


# ---------------------------------------------------------------------------------------------------
# PATCH of notes
# ---------------------------------------------------------------------------------------------------


def test_patch_writes_only_notes_and_every_write_is_counted(
    sim: TenantSimulator, graph: requests.Session, pick: Callable[..., dict[str, Any]]
) -> None:
    def listed(p: dict[str, Any]) -> str:
        return ", ".join(o["userPrincipalName"] for o in p["owners"])

    principal = pick(lambda p: p["kind"] == "line_of_business" and p["owners"] and p["notes"] != listed(p))
    url = f"{sim.graph_base_url}/v1.0/servicePrincipals/{principal['id']}"
    _, link = delta_round(graph, f"{sim.graph_base_url}/v1.0/servicePrincipals/delta?$select=id,notes")
    notes = listed(principal)

    first = graph.patch(url, json={"notes": notes}, timeout=30)
    again = graph.patch(url, json={"notes": notes}, timeout=30)
    refused = graph.patch(
        url, json={"notes": "x@contoso.onmicrosoft.com", "displayName": "renamed"}, timeout=30
    )
    too_long = graph.patch(url, json={"notes": "x" * 1025}, timeout=30)

    assert (first.status_code, first.content, again.status_code) == (204, b"", 204)
    assert refused.status_code == too_long.status_code == 400
    assert graph.get(url, params={"$select": "notes,displayName"}).json()["notes"] == notes
    assert graph.get(url, params={"$select": "displayName"}).json()["displayName"] == principal["displayName"]
    writes = [
        w
        for w in requests.get(f"{sim.base_url}/_sim/apps/writes", timeout=10).json()["writes"]
        if w["id"] == principal["id"]
    ]
    assert [(w["status"], w["changed"]) for w in writes] == [
        (204, principal["notes"] != notes),
        (204, False),
        (400, False),
        (400, False),
    ]
    counts = requests.get(f"{sim.base_url}/_sim/apps/writes", timeout=10).json()["accepted_by_object"]
    assert counts[principal["id"]] == 2
    pages, _ = delta_round(graph, link)
    assert items(pages)[principal["id"]] == {"id": principal["id"], "notes": notes}

    update = [
        r
        for r in audits(sim, graph).values()
        if r["activityDisplayName"] == "Update service principal"
        and r["targetResources"][0]["id"] == principal["id"]
    ]
    assert len(update) == 1  # the unchanged and the refused writes leave no record
    assert update[0]["initiatedBy"]["app"]["appId"] == "aoc-app"
    assert update[0]["targetResources"][0]["modifiedProperties"][0]["displayName"] == "Notes"

    application = graph.patch(
        f"{sim.graph_base_url}/v1.0/applications/{principal['applicationId']}", json={"notes": ""}
    )
    assert application.status_code == 405
    unknown = graph.patch(
        f"{sim.graph_base_url}/v1.0/servicePrincipals/00000000-0000-4000-8000-000000000009",
        json={"notes": ""},
    )
    assert unknown.status_code == 404


# ---------------------------------------------------------------------------------------------------
# Controls and the audit records they produce
# ---------------------------------------------------------------------------------------------------


def test_each_control_changes_the_reads_and_writes_the_audit_record_graph_would(
    sim: TenantSimulator, graph: requests.Session, pick: Callable[..., dict[str, Any]]
) -> None:
    principal = pick(
        lambda p: (
            p["kind"] == "line_of_business"
            and p["owners"]
            and p["applicationId"]
            and p["notes"] != ""
            and all(o["userType"] != "Guest" for o in p["owners"])
            and "Directory.ReadWrite.All" not in {g["value"] for g in p["permissions"]}
        )
    )
    owner = principal["owners"][0]
    base = f"{sim.graph_base_url}/v1.0/servicePrincipals/{principal['id']}"
    actor = "taro.tanaka@contoso.onmicrosoft.com"
    done = {
        "remove owner": control(
            sim,
            "owners",
            {"object": principal["id"], "owner": owner["id"], "action": "remove", "actor": actor},
        ),
        "add owner": control(
            sim,
            "owners",
            {
                "object": principal["id"],
                "owner": "kai.nakamura_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                "action": "add",
                "actor": actor,
            },
        ),
        "app secret": control(
            sim, "credentials", {"object": principal["applicationId"], "type": "password", "actor": actor}
        ),
        "sp certificate": control(
            sim,
            "credentials",
            {"object": principal["id"], "type": "certificate", "lifetime_days": 730, "actor": actor},
        ),
        "grant": control(
            sim,
            "permissions",
            {"object": principal["id"], "permission": "Directory.ReadWrite.All", "actor": actor},
        ),
        "notes": control(sim, "notes", {"object": principal["id"], "notes": "", "actor": actor}),
        "disable": control(
            sim, "users", {"user": "pattif@contoso.onmicrosoft.com", "account_enabled": False, "actor": actor}
        ),
    }
    expected_activities = {
        "remove owner": ["Remove owner from service principal"],
        "add owner": ["Add owner to service principal"],
        "app secret": [CERTIFICATES_AND_SECRETS],
        "sp certificate": ["Add service principal credentials"],
        "grant": ["Consent to application", "Add app role assignment to service principal"],
        "notes": ["Update service principal"],
        "disable": ["Update user"],
    }
    records = audits(sim, graph)
    ground_truth = set(sim.ground_truth()["ids"])
    for name, result in done.items():
        found = [records[native(i)] for i in result["audit_ids"]]
        assert [r["activityDisplayName"] for r in found] == expected_activities[name], name
        assert set(result["audit_ids"]) <= ground_truth
        assert all(r["initiatedBy"]["user"]["userPrincipalName"] == actor for r in found)
        assert len({r["correlationId"] for r in found}) == 1
    removed = records[native(done["remove owner"]["audit_ids"][0])]["targetResources"]
    assert (removed[0]["id"], removed[1]["id"]) == (owner["id"], principal["id"])
    assert removed[0]["modifiedProperties"][0] == {
        "displayName": "ServicePrincipal.ObjectID",
        "oldValue": f'"{principal["id"]}"',
        "newValue": None,
    }
    granted = records[native(done["grant"]["audit_ids"][1])]["targetResources"]
    values = {p["displayName"]: p["newValue"] for p in granted[0]["modifiedProperties"]}
    assert (values["AppRole.Value"], values["ServicePrincipal.ObjectID"]) == (
        '"Directory.ReadWrite.All"',
        f'"{principal["id"]}"',
    )
    secret = records[native(done["app secret"]["audit_ids"][0])]["targetResources"][0]
    assert (secret["type"], secret["id"]) == ("Application", principal["applicationId"])
    assert done["app secret"]["keyId"] in secret["modifiedProperties"][0]["newValue"]

    owners = graph.get(f"{base}/owners", params={"$select": "id,userType"}).json()["value"]
    assert owner["id"] not in {o["id"] for o in owners}
    assert "Guest" in {o["userType"] for o in owners}
    granted_ids = {a["appRoleId"] for a in graph.get(f"{base}/appRoleAssignments").json()["value"]}
    assert "19dbc75e-c2e2-444c-a770-ec69d8559fc7" in granted_ids  # Directory.ReadWrite.All
    application = graph.get(f"{sim.graph_base_url}/v1.0/applications/{principal['applicationId']}").json()
    assert done["app secret"]["keyId"] in {c["keyId"] for c in application["passwordCredentials"]}
    certificates = graph.get(base, params={"$select": "keyCredentials"}).json()["keyCredentials"]
    assert done["sp certificate"]["keyId"] in {c["keyId"] for c in certificates}
    disabled = graph.get(
        f"{sim.graph_base_url}/v1.0/users/pattif@contoso.onmicrosoft.com",
        params={"$select": "accountEnabled"},
    ).json()
    assert disabled["accountEnabled"] is False


def test_registering_and_deleting_an_app_is_audited(sim: TenantSimulator, graph: requests.Session) -> None:
    created = control(
        sim,
        "applications",
        {
            "display_name": "Zoë's new connector",
            "sign_in_audience": "AzureADMultipleOrgs",
            "owners": ["adelev@contoso.onmicrosoft.com"],
        },
    )
    deleted = control(sim, "delete", {"object": created["applicationId"]})
    records = audits(sim, graph)
    assert [records[native(i)]["activityDisplayName"] for i in created["audit_ids"]] == [
        "Add application",
        "Add service principal",
        "Add owner to application",
        "Add owner to service principal",
    ]
    assert [records[native(i)]["activityDisplayName"] for i in deleted["audit_ids"]] == [
        "Delete application",
        "Delete service principal",
    ]
    assert graph.get(f"{sim.graph_base_url}/v1.0/servicePrincipals/{created['object']}").status_code == 404


def test_controls_refuse_what_the_directory_would(
    sim: TenantSimulator, pick: Callable[..., dict[str, Any]]
) -> None:
    principal = pick(lambda p: p["kind"] == "line_of_business" and p["owners"])
    cases = [
        ("owners", {"object": principal["id"], "owner": principal["owners"][0]["id"], "action": "add"}),
        ("owners", {"object": principal["id"], "owner": "nobody@contoso.onmicrosoft.com", "action": "add"}),
        (
            "owners",
            {
                "object": "00000000-0000-4000-8000-00000000000f",
                "owner": "leeg@contoso.onmicrosoft.com",
                "action": "add",
            },
        ),
        ("permissions", {"object": principal["id"], "permission": "Not.A.Permission"}),
        ("notes", {"object": principal["id"], "notes": "x" * 1025}),
        (
            "credentials",
            {"object": principal["id"], "start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        ),
        ("credentials", {"object": principal["id"], "surprise": True}),
        ("delta-reset", {"resource": "users"}),
    ]
    for route, document in cases:
        response = requests.post(f"{sim.base_url}/_sim/apps/{route}", json=document, timeout=10)
        assert response.status_code == 400, (route, document, response.text)
        assert response.json()["error"]
    assert requests.get(f"{sim.base_url}/_sim/apps/owners", timeout=10).status_code == 405
    assert requests.get(f"{sim.base_url}/_sim/apps/nothing", timeout=10).status_code == 404
