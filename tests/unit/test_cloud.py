"""The national-cloud table and its overrides."""

from __future__ import annotations

import dataclasses

import pytest

from shared.m365.cloud import CLOUD_NAMES, CLOUDS, CloudEndpoints, parse_cloud_name, resolve_endpoints


def test_every_cloud_name_has_endpoints() -> None:
    assert set(CLOUD_NAMES) == {"global", "usgov", "dod", "china"}
    assert set(CLOUDS) == set(CLOUD_NAMES)


@pytest.mark.parametrize(
    ("cloud", "authority", "graph", "management", "v1_issuer", "v2_issuer"),
    [
        (
            "global",
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://manage.office.com",
            "https://sts.windows.net",
            "https://login.microsoftonline.com",
        ),
        (
            "usgov",
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://manage.office365.us",
            "https://sts.windows.net",
            "https://login.microsoftonline.us",
        ),
        (
            "dod",
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://manage.protection.apps.mil",
            "https://sts.windows.net",
            "https://login.microsoftonline.us",
        ),
        (
            "china",
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://manage.office365.cn",
            "https://sts.chinacloudapi.cn",
            "https://login.partner.microsoftonline.cn",
        ),
    ],
)
def test_cloud_table_values(
    cloud: str, authority: str, graph: str, management: str, v1_issuer: str, v2_issuer: str
) -> None:
    endpoints = resolve_endpoints(parse_cloud_name(cloud))
    assert endpoints == CloudEndpoints(
        authority_host=authority,
        graph_base=graph,
        management_base=management,
        graph_resource=graph,
        management_resource=management,
        v1_issuer_host=v1_issuer,
        v2_issuer_host=v2_issuer,
    )
    assert endpoints.graph_scope == f"{graph}/.default"
    assert endpoints.management_scope == f"{management}/.default"


def test_endpoints_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CLOUDS["global"].graph_base = "https://example.invalid"  # type: ignore[misc]


def test_overridden_bases_win_but_scopes_keep_the_real_resource() -> None:
    endpoints = resolve_endpoints(
        "global",
        authority_host="http://127.0.0.1:7072",
        graph_base="http://127.0.0.1:7072/graph/",
        management_base="http://127.0.0.1:7072/manage",
    )
    assert endpoints.authority_host == "http://127.0.0.1:7072"
    assert endpoints.graph_base == "http://127.0.0.1:7072/graph"
    assert endpoints.management_base == "http://127.0.0.1:7072/manage"
    assert endpoints.graph_scope == "https://graph.microsoft.com/.default"
    assert endpoints.management_scope == "https://manage.office.com/.default"


def test_token_issuers_of_a_tenant() -> None:
    tenant = "11111111-1111-1111-1111-111111111111"
    assert CLOUDS["global"].v1_issuer(tenant) == f"https://sts.windows.net/{tenant}/"
    assert CLOUDS["global"].v2_issuer(tenant) == f"https://login.microsoftonline.com/{tenant}/v2.0"
    assert CLOUDS["usgov"].v1_issuer(tenant) == f"https://sts.windows.net/{tenant}/"
    assert CLOUDS["dod"].v2_issuer(tenant) == f"https://login.microsoftonline.us/{tenant}/v2.0"
    assert CLOUDS["china"].v1_issuer(tenant) == f"https://sts.chinacloudapi.cn/{tenant}/"
    assert CLOUDS["china"].v2_issuer(tenant) == f"https://login.partner.microsoftonline.cn/{tenant}/v2.0"


def test_a_moved_authority_is_its_own_v2_issuer() -> None:
    local = resolve_endpoints("global", authority_host="http://127.0.0.1:7072/")
    assert local.v2_issuer_host == "http://127.0.0.1:7072"
    assert local.v1_issuer_host == "https://sts.windows.net"  # v1 tokens name the cloud's STS
    # Naming the cloud's own authority changes nothing, even where it is not the v2 issuer (21Vianet).
    assert resolve_endpoints("china", authority_host="https://login.chinacloudapi.cn") == CLOUDS["china"]
    explicit = resolve_endpoints(
        "global", authority_host="http://127.0.0.1:7072", v2_issuer_host="https://issuer.example"
    )
    assert explicit.v2_issuer_host == "https://issuer.example"


def test_an_override_leaves_the_other_endpoints_alone() -> None:
    endpoints = resolve_endpoints("dod", graph_base="http://localhost:9000/graph")
    assert endpoints.graph_base == "http://localhost:9000/graph"
    assert endpoints.authority_host == "https://login.microsoftonline.us"
    assert endpoints.management_base == "https://manage.protection.apps.mil"
    assert endpoints.graph_scope == "https://dod-graph.microsoft.us/.default"


def test_gcc_management_api_through_overrides() -> None:
    endpoints = resolve_endpoints(
        "global",
        management_base="https://manage-gcc.office.com",
        management_resource="https://manage-gcc.office.com",
    )
    assert endpoints.management_base == "https://manage-gcc.office.com"
    assert endpoints.management_scope == "https://manage-gcc.office.com/.default"
    assert endpoints.graph_scope == "https://graph.microsoft.com/.default"


def test_empty_overrides_count_as_unset() -> None:
    assert resolve_endpoints("usgov", authority_host="", graph_base="") == CLOUDS["usgov"]


@pytest.mark.parametrize("bad", ["graph.local", "ftp://host/x", "http://host/graph?x=1", "/graph"])
def test_overrides_must_be_absolute_http_urls(bad: str) -> None:
    with pytest.raises(ValueError, match="graph_base"):
        resolve_endpoints("global", graph_base=bad)


def test_parse_cloud_name() -> None:
    assert parse_cloud_name("  USGov ") == "usgov"
    with pytest.raises(ValueError, match="global, usgov, dod, china"):
        parse_cloud_name("gcc")
    with pytest.raises(ValueError, match="unknown cloud"):
        resolve_endpoints("mars")  # type: ignore[arg-type]
