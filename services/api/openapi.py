"""The OpenAPI 3.1 document of the API, generated from the route table and the response Structs:
served at /openapi.json and committed as proto/openapi.json (a test fails when it drifts)."""

from __future__ import annotations

import inspect
import re
from typing import Any

import msgspec

from services.api.routes import ROUTES, Route
from services.api.views import Problem

REF = "#/components/schemas/{name}"
PROBLEM_JSON = "application/problem+json"
ERRORS = {
    400: "The request is malformed: a parameter or the body is invalid",
    401: "The bearer token is missing or wrong",
    403: "Control is disabled: no token is configured (strategy changes: or no PostgreSQL)",
    404: "Not found",
    405: "Method not allowed",
    409: "The change conflicts with the current state (the id exists, or the status does not allow it)",
    503: "Unhealthy (GET /health), or the bus refused the command",
}


def _clean(node: Any) -> Any:
    """Descriptions as inspect.cleandoc gives them, whatever msgspec did with the docstring."""
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _clean(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _param_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: an optional one is omitted rather than null."""
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    options = schema.get("anyOf")
    if options:
        kept = [o for o in options if o != {"type": "null"}]
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}
    return schema


def _parameters(route: Route, components: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    query = components.get(route.query.__name__, {})
    required = set(query.get("required", []))
    for name, schema in query.get("properties", {}).items():
        params.append({"name": name, "in": "query", "required": name in required, "schema": _param_schema(schema)})
    return params


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": ERRORS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(name="Problem")}}},
    }


def document() -> dict[str, Any]:
    """The document; its version is the API's (the /api/v1 contract), not the package's."""
    types: list[type] = [Problem]
    for route in ROUTES:
        types += [route.query, route.response] + ([route.body] if route.body else [])
    _, schemas = msgspec.json.schema_components(types, ref_template=REF)
    schemas = _clean(schemas)
    paths: dict[str, Any] = {}
    for route in ROUTES:
        responses: dict[str, Any] = {}
        for status in route.statuses:
            if status >= 400 and status != 503:
                responses[str(status)] = _problem(status)
                continue
            description = "Healthy" if route.name == "health" and status == 200 else route.summary
            if route.name == "health" and status == 503:
                description = "Unhealthy: the score is below the threshold (the same body)"
            responses[str(status)] = {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": REF.format(name=route.response.__name__)}}},
            }
        responses["400"] = _problem(400)
        if route.control:
            responses["401"] = _problem(401)
            responses["403"] = _problem(403)
            responses["503"] = _problem(503)
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "parameters": _parameters(route, schemas),
            "responses": responses,
        }
        if route.control:
            operation["security"] = [{"bearer": []}]
        else:
            operation["security"] = [{}, {"bearer": []}]
        if route.body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"$ref": REF.format(name=route.body.__name__)}}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    for name in [r.query.__name__ for r in ROUTES]:  # query Structs live on as parameters only
        schemas.pop(name, None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ticktape API",
            "version": "1.0.0",
            "description": (
                "The read model of a ticktape stack, projected from its event log (never a second source of "
                "truth), and the operator's control commands. Reads are open to loopback clients by default; "
                "control needs the bearer token (api.token_env). Errors are RFC 9457 problem+json."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
