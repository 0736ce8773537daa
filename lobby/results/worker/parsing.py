"""What a stream entry is worth: a MatchResult, or poison (dead-lettered at once with a
stable reason code); and which store errors are transient (retried while they last)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import asyncpg
from pydantic import ValidationError

from tradearena.contracts.deadletter import RESULT_FIELD, Reason
from tradearena.contracts.results import RESULT_SCHEMA_VERSION, MatchResult
from tradearena.modes import Catalogue


class PoisonError(Exception):
    """The message can never be stored: dead-letter it at once."""

    def __init__(self, code: Reason, message: str) -> None:
        super().__init__(message)
        self.code = code


_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")  # connection, resources, operator intervention
_TRANSIENT_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock


def is_transient(exc: BaseException | None) -> bool:
    """Errors that say nothing about the message: retry for as long as they last."""
    if exc is None:
        return False
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | ConnectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    return False


def parse_entry(fields: Mapping[bytes | str, bytes | str], catalogue: Catalogue) -> MatchResult:
    """The MatchResult of one stream entry, or PoisonError with a stable code."""
    raw = fields.get(RESULT_FIELD.encode(), fields.get(RESULT_FIELD))
    if raw is None:
        raise PoisonError(Reason.MISSING_RESULT, "the entry has no `result` field")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonError(Reason.BAD_JSON, f"`result` is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PoisonError(Reason.BAD_JSON, "`result` is not a JSON object")
    if doc.get("schema_version") != RESULT_SCHEMA_VERSION:
        raise PoisonError(
            Reason.UNKNOWN_SCHEMA_VERSION,
            f"schema_version {doc.get('schema_version')!r} is not {RESULT_SCHEMA_VERSION}",
        )
    try:
        result = MatchResult.model_validate(doc)
    except ValidationError as exc:
        raise PoisonError(Reason.INVALID_RESULT, str(exc)[:2000]) from None
    if result.mode not in catalogue.modes:
        raise PoisonError(Reason.UNKNOWN_MODE, f"unknown mode {result.mode!r}")
    for player in {*result.players, *(s.player for s in result.standings)}:
        try:
            uuid.UUID(player)
        except ValueError:
            raise PoisonError(
                Reason.INVALID_PLAYER, f"player {player!r} is not a user id"
            ) from None
    return result
