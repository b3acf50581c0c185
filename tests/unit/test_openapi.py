"""The OpenAPI document matches the routes the app registers, and is valid OpenAPI 3.1."""

from __future__ import annotations

from typing import Any

import pytest

from shared.api.catalog import openapi_json


def _registered_routes() -> set[tuple[str, str]]:
    """The HTTP routes of the query_api Blueprint, indexed by a fresh FunctionApp as the host would."""
    import azure.functions as func

    from query_api.routes import bp

    app = func.FunctionApp()
    app.register_functions(bp)
    routes: set[tuple[str, str]] = set()
    for function in app.get_functions():
        trigger = function.get_trigger()
        route = getattr(trigger, "route", None)
        if route is None or function.get_function_name() == "cors_preflight":
            continue
        for method in getattr(trigger, "methods", None) or []:
            routes.add((str(method).split(".")[-1].upper(), f"/api/{route}"))
    return routes


def test_every_registered_http_route_is_documented_and_nothing_else() -> None:
    document = openapi_json()
    documented = {(m.upper(), path) for path, ops in document["paths"].items() for m in ops}
    registered = _registered_routes()
    assert ("GET", "/api/events") in registered
    assert documented == registered


def test_every_operation_has_an_id_responses_and_resolvable_references() -> None:
    document = openapi_json()
    schemas = document["components"]["schemas"]
    operation_ids = []

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            operation_ids.append(operation["operationId"])
            assert operation["responses"], f"{method} {path}"
            for parameter in operation["parameters"]:
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
    assert len(operation_ids) == len(set(operation_ids))
    for reference in refs(document):
        assert reference.startswith("#/components/schemas/")
        assert reference.rsplit("/", 1)[-1] in schemas, reference


@pytest.mark.parametrize(
    "name",
    ["EventPage", "AlertPage", "AlertUpdate", "Problem", "HistogramOut", "HistogramBucket", "VersionOut"],
)
def test_models_are_components(name: str) -> None:
    assert name in openapi_json()["components"]["schemas"]


def test_the_histogram_takes_the_search_filters_and_buckets_and_no_paging() -> None:
    document = openapi_json()
    search = {p["name"] for p in document["paths"]["/api/events"]["get"]["parameters"]}
    histogram = {p["name"]: p for p in document["paths"]["/api/events/histogram"]["get"]["parameters"]}
    assert set(histogram) == (search - {"page_size", "continuation"}) | {"buckets"}
    assert histogram["buckets"]["schema"] | {"description": ""} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 120,
        "description": "",
    }
    assert histogram["service"]["explode"] is True
    body = document["components"]["schemas"]["HistogramOut"]
    assert body["required"] == ["from", "to", "bucket_seconds", "buckets", "total", "plan"]
    assert body["properties"]["plan"]["enum"] == ["counters", "timestamps", "counts"]
    version = document["paths"]["/api/version"]["get"]
    assert version["parameters"] == []
    assert "AOC.Reader" in version["description"]
