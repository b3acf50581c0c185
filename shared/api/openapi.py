"""The OpenAPI 3.1 document, generated from the route declarations (shared.api.routing.Route).

`openapi_document` turns query models into parameters (list-typed fields as repeatable ones), body and
response models into JSON Schema components, and adds the problem responses the routes share.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from shared.api.routing import WRITE_METHODS, Route


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def _models(routes: Iterable[Route]) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {"Problem": Problem}
    for route in routes:
        for model in (route.body, route.response):
            if model is not None:
                seen.setdefault(model.__name__, model)
    return list(seen.values())


def _query_parameters(route: Route) -> list[dict[str, Any]]:
    schema = route.query.model_json_schema(mode="validation")
    definitions = schema.get("$defs", {})
    repeatable = route.repeatable
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _inline(prop, definitions)
        if name in repeatable:
            items = prop.get("items") or prop
            parameter_schema: dict[str, Any] = {"type": "array", "items": items}
            if "maxItems" in prop:
                parameter_schema["maxItems"] = prop["maxItems"]
            parameter = {"name": name, "in": "query", "required": False, "schema": parameter_schema}
            parameter |= {"style": "form", "explode": True}
        else:
            parameter = {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "schema": _single(prop),
            }
        if prop.get("description"):
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _inline(prop: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Resolve local $refs (enums) so query parameters stand alone."""
    if "$ref" in prop:
        return _inline(definitions[prop["$ref"].rsplit("/", 1)[-1]], definitions)
    result = dict(prop)
    for key in ("anyOf", "oneOf"):
        if key in result:
            result[key] = [_inline(p, definitions) for p in result[key]]
    if "items" in result and isinstance(result["items"], dict):
        result["items"] = _inline(result["items"], definitions)
    return result


def _single(prop: dict[str, Any]) -> dict[str, Any]:
    """A query value is never null on the wire: drop the `null` branch of optional fields."""
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    base = {k: v for k, v in prop.items() if k not in ("anyOf", "default", "title")}
    if options:
        return {**base, **options[0]} if len(options) == 1 else {**base, "anyOf": options}
    return base


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def openapi_document(routes: Iterable[Route], *, title: str, version: str) -> dict[str, Any]:
    routes = list(routes)
    _, schemas = models_json_schema(
        [(model, "validation") for model in _models(routes) if model is not None],
        ref_template="#/components/schemas/{model}",
    )
    components = schemas.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": [
                {
                    "name": p.name,
                    "in": "path",
                    "required": True,
                    "description": p.description,
                    "schema": {"type": "string", "minLength": 1, "maxLength": p.max_length},
                }
                for p in route.path_params
            ]
            + _query_parameters(route),
        }
        if route.if_match:
            operation["parameters"].append(
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": "The ETag last read: the change is made only if it is still current",
                    "schema": {"type": "string", "maxLength": 200},
                }
            )
        if route.description:
            operation["description"] = route.description
        if route.role is not None:
            operation["description"] = (
                operation.get("description", "") + f"\n\nNeeds the {route.role.value} role."
            ).strip()
            operation["security"] = [{"functionKey": []}, {"entraBearer": []}, {"swaPrincipal": []}]
        else:
            operation["security"] = []
        if route.body is not None:
            operation["requestBody"] = {
                "required": bool(route.body.model_fields) or route.raw_body,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{route.body.__name__}"}}
                },
            }
        success: dict[str, Any] = {"description": "OK"}
        content: dict[str, Any] = {}
        if route.response is not None:
            content["application/json"] = {
                "schema": {"$ref": f"#/components/schemas/{route.response.__name__}"}
            }
        for media_type, schema in route.content.items():
            content[media_type] = {"schema": schema}
        if content:
            success["content"] = content
        responses: dict[str, Any] = {str(route.status): success}
        for status in route.extra_statuses:
            responses[str(status)] = {**success, "description": "See the body"}
        for status, meaning in sorted(route.empty_statuses.items()):
            responses[str(status)] = {"description": meaning}
        responses["400"] = _problem("Invalid input: the problem names the field")
        if route.role is not None:
            responses["401"] = _problem("Not authenticated")
            responses["403"] = _problem("Authenticated, without the role this needs")
        if route.path_params:
            responses["404"] = _problem("Not found, or hidden from this caller")
        if route.method in WRITE_METHODS and route.body is not None:
            responses["409"] = _problem("Changed by someone else meanwhile: read it again and retry")
            responses["413"] = _problem("The body is larger than this route accepts")
            responses["415"] = _problem("The body is not JSON (application/json, UTF-8)")
        for status, description in sorted(route.problems.items()):
            responses[str(status)] = _problem(description)
        if route.if_match:
            responses["412"] = _problem("If-Match names an ETag that is no longer current: read it again")
        operation["responses"] = responses
        paths.setdefault(f"/api/{route.path}", {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "entraBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "swaPrincipal": {"type": "apiKey", "in": "header", "name": "x-ms-client-principal"},
            },
        },
    }
