"""The REST operation registry: one declaration gives the aiohttp route, the input
validation and the OpenAPI 3.1 entry.

    api.add(app, Operation("GET", "/api/v1/me", me, "getMe", "The caller", tag="accounts",
                           responses={200: Me}, auth="user"))

The wrapper authenticates (`auth="user"|"admin"`), parses and validates the JSON
body, query and path parameters into the declared pydantic models (bad input
becomes a 4xx problem, never a 500) and stores them on the request:
`body_of(request, Model)`, `query_of(...)`, `path_of(...)`, `principal(request)`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from lobby.http.principal import Principal, authenticate
from lobby.http.problems import MEDIA_TYPE, problem, validation_errors
from lobby.http.schemas import Problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Auth = Literal["public", "user", "admin"]
M = TypeVar("M", bound=BaseModel)

API_PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: type[BaseModel] | None = None
    auth: Auth = "public"
    errors: tuple[int, ...] = ()
    rate_limited: bool = True
    # A non-JSON or free-form success response: {status: (media type, schema)}.
    raw_responses: Mapping[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    description: str = ""


BODY = web.RequestKey("body", BaseModel)
QUERY = web.RequestKey("query", BaseModel)
PATH = web.RequestKey("path", BaseModel)
PRINCIPAL = web.RequestKey("principal", Principal)


def body_of(request: web.Request, model: type[M]) -> M:
    value = request[BODY]
    assert isinstance(value, model)
    return value


def query_of(request: web.Request, model: type[M]) -> M:
    value = request[QUERY]
    assert isinstance(value, model)
    return value


def path_of(request: web.Request, model: type[M]) -> M:
    value = request[PATH]
    assert isinstance(value, model)
    return value


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def reply(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _no_nul(found: bool, where: str) -> None:
    # PostgreSQL text cannot hold U+0000: refuse it here rather than fail in the database.
    if found:
        raise problem(
            422,
            "validation_failed",
            f"{where}: NUL characters are not allowed",
            errors=[{"loc": [where], "msg": "NUL characters are not allowed", "type": "nul"}],
        )


def _validate(model: type[M], data: dict[str, Any]) -> M:
    """Parameters (strings from the URL), converted to the declared types."""
    for name, value in data.items():
        values = value if isinstance(value, list) else [value]
        _no_nul(any("\x00" in str(v) for v in values), name)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_errors(list(exc.errors(include_input=False))) from None


async def read_body(request: web.Request, model: type[M]) -> M:
    """A JSON body validated strictly: 0 is not false, "1" is not 1."""
    if request.content_type != "application/json":
        raise problem(415, "unsupported_media_type", "the request body must be application/json")
    raw = await request.read()  # over client_max_size: aiohttp raises 413
    try:
        json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # nesting deeper than the decoder's recursion limit
        raise problem(400, "json_too_deep", "the body's JSON is nested too deeply") from None
    _no_nul(b"\\u0000" in raw, "body")
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise validation_errors(list(exc.errors(include_input=False))) from None


def _query_dict(model: type[BaseModel], request: web.Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        name = info.alias or field_name  # `from` is a keyword: a field aliased
        values = request.query.getall(name, [])
        if not values:
            continue
        annotation = str(info.annotation)
        out[name] = values if annotation.startswith("list") else values[-1]
    known = {info.alias or name for name, info in model.model_fields.items()}
    unknown = set(request.query) - known
    if unknown:
        raise problem(400, "unknown_parameter", f"unknown query parameter {sorted(unknown)[0]!r}")
    return out


def _wrap(op: Operation) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if op.auth != "public":
            request[PRINCIPAL] = await authenticate(request, admin=op.auth == "admin")
        if op.path_params is not None:
            request[PATH] = _validate(op.path_params, dict(request.match_info))
        if op.query is not None:
            request[QUERY] = _validate(op.query, _query_dict(op.query, request))
        if op.body is not None:
            request[BODY] = await read_body(request, op.body)
        return await op.handler(request)

    handler.__name__ = op.operation_id
    return handler


class Api:
    """Every operation of the app, for routing and for the OpenAPI document."""

    def __init__(self, title: str, version: str) -> None:
        self.title = title
        self.version = version
        self.operations: list[Operation] = []
        self._document: dict[str, Any] | None = None

    def add(self, app: web.Application, op: Operation) -> None:
        app.router.add_route(op.method, op.path, _wrap(op), name=op.operation_id)
        self.operations.append(op)
        self._document = None

    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = build_openapi(self.title, self.version, self.operations)
        return self._document


def _error_statuses(op: Operation) -> list[int]:
    statuses = set(op.errors)
    if op.auth != "public":
        statuses |= {401, 403}
    if op.body is not None:
        statuses |= {400, 413, 415, 422}
    if op.query is not None or op.path_params is not None:
        statuses |= {400, 422}
    if op.rate_limited:
        statuses.add(429)
    return sorted(statuses)


def _parameters(model: type[BaseModel], where: str, defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    defs.update(schema.get("$defs", {}))
    required = set(schema.get("required", []))
    out = []
    for name, raw in schema.get("properties", {}).items():
        prop = {k: v for k, v in raw.items() if k != "title"}
        out.append(
            {
                "name": name,
                "in": where,
                "required": where == "path" or name in required,
                "schema": prop,
            }
        )
    return out


def build_openapi(title: str, version: str, operations: list[Operation]) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (Problem, "serialization")
    ]
    for op in operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        models.extend((m, "serialization") for m in op.responses.values() if m is not None)
    refs, top = models_json_schema(models, ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    problem_ref = refs[(Problem, "serialization")]
    retry_after = {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {}
        for status, model in op.responses.items():
            if model is None:
                responses[str(status)] = {"description": "no content"}
            else:
                responses[str(status)] = {
                    "description": model.__doc__.strip().splitlines()[0]
                    if model.__doc__
                    else model.__name__,
                    "content": {"application/json": {"schema": refs[(model, "serialization")]}},
                }
        for status, (media, schema) in op.raw_responses.items():
            responses[str(status)] = {
                "description": "success",
                "content": {media: {"schema": schema}},
            }
        for status in _error_statuses(op):
            entry: dict[str, Any] = {
                "description": "problem details",
                "content": {MEDIA_TYPE: {"schema": problem_ref}},
            }
            if status == 429:
                entry["headers"] = retry_after
            responses[str(status)] = entry
        spec: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        if op.description:
            spec["description"] = op.description
        params: list[dict[str, Any]] = []
        if op.path_params is not None:
            params += _parameters(op.path_params, "path", schemas)
        if op.query is not None:
            params += _parameters(op.query, "query", schemas)
        if params:
            spec["parameters"] = params
        if op.body is not None:
            spec["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        if op.auth != "public":
            spec["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "TradeArena lobby. Errors are RFC 9457 problem details "
            "(application/problem+json) with a stable `code`.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
