"""The national-cloud table and its overrides."""

from __future__ import annotations

import dataclasses

import pytest

from shared.cloud import CLOUD_NAMES, CLOUDS, CloudEndpoints, parse_cloud_name, resolve_endpoints


def test_every_cloud_name_has_endpoints() -> None:
    assert set(CLOUD_NAMES) == {"global", "usgov", "dod", "china"}
    assert set(CLOUDS) == set(CLOUD_NAMES)


@pytest.mark.parametrize(
    ("cloud", "authority", "graph", "management"),
    [
        (
            "global",
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://manage.office.com",
        ),
        (
            "usgov",
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://manage.office365.us",
        ),
        (
            "dod",
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://manage.protection.apps.mil",
        ),
        (
            "china",
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://manage.office365.cn",
        ),
    ],
)
def test_cloud_table_values(cloud: str, authority: str, graph: str, management: str) -> None:
    endpoints = resolve_endpoints(parse_cloud_name(cloud))
    assert endpoints == CloudEndpoints(
        authority_host=authority,
        graph_base=graph,
        management_base=management,
        graph_resource=graph,
        management_resource=management,
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
