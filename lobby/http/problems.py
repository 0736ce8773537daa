"""RFC 9457 problem details: every error the lobby returns, with a stable `code`.

Pure construction here; the error middleware (`lobby.http.middleware`) turns
`ProblemError`s and aiohttp's HTTP exceptions into `application/problem+json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:tradearena:problem:"


@dataclass(frozen=True)
class Problem:
    status: int
    code: str
    detail: str
    title: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.code

    def to_dict(self) -> dict[str, Any]:
        title = self.title or HTTPStatus(self.status).phrase
        return {
            **self.extra,
            "type": self.type,
            "title": title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }

    def body(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


class ProblemError(Exception):
    """Raise from a handler to answer with a problem."""

    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = dict(headers or {})


def problem(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> ProblemError:
    return ProblemError(Problem(status, code, detail, extra=extra), headers)


def retry_after_header(seconds: float) -> dict[str, str]:
    """Retry-After is whole seconds, at least 1 (0 would invite an immediate retry)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def too_many(code: str, detail: str, retry_after_s: float) -> ProblemError:
    headers = retry_after_header(retry_after_s)
    return problem(429, code, detail, headers, retry_after=int(headers["Retry-After"]))


# The codes of problems raised for aiohttp's own HTTP errors (routing, body size...).
HTTP_STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is malformed"),
    401: ("unauthorized", "authentication is required"),
    403: ("forbidden", "this is not allowed"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "this method is not allowed on this resource"),
    406: ("not_acceptable", "no acceptable representation"),
    408: ("request_timeout", "the request took too long"),
    411: ("length_required", "a Content-Length is required"),
    413: ("payload_too_large", "the request body is too large"),
    414: ("uri_too_long", "the request URI is too long"),
    415: ("unsupported_media_type", "the request body must be application/json"),
    422: ("validation_failed", "the request is invalid"),
    429: ("rate_limited", "too many requests"),
    431: ("headers_too_large", "the request headers are too large"),
}


def from_http_status(status: int, reason: str | None = None) -> Problem:
    code, detail = HTTP_STATUS_CODES.get(
        status, ("internal_error", "internal error") if status >= 500 else ("http_error", "")
    )
    if status >= 500:
        return Problem(status, code if status != 500 else "internal_error", "internal error")
    return Problem(status, code, detail or (reason or HTTPStatus(status).phrase))


def validation_errors(errors: list[Mapping[str, Any]]) -> ProblemError:
    """422 from pydantic errors: where and what, never the submitted value (it may be a
    password)."""
    items = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]
    first = items[0] if items else {"loc": [], "msg": "invalid"}
    where = ".".join(first["loc"]) or "body"
    return problem(422, "validation_failed", f"{where}: {first['msg']}", errors=items)


class ServerBusyError(Exception):
    """A bounded resource is full (the password hasher's backlog): the middleware answers
    503 `server_busy` with Retry-After, instead of queueing without limit."""
