"""The dead letter of the results stream: entries the results worker can never store.

Stream `keys.RESULTS_DEAD_LETTER`, one entry per results-stream entry given up on,
written by the worker in one MULTI with the XACK of the original. Its fields:

* `id`: the original results-stream entry id;
* `reason`: a `Reason` code (stable: alerts, dashboards and the runbook use them);
* `error`: what went wrong, at most `ERROR_MAX` characters;
* `result`: the original entry's `result` field, byte for byte (absent when the
  original had none);
* `fields`: a JSON object of the original entry's other fields (its trace context,
  `redriven_from`...), absent when it had none.

The dead-letter entry's own id is its time of dead-lettering (ms). `tradearena dlq`
lists, shows, redrives (the original fields back on the results stream, plus
`redriven_from`) and drops them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RESULT_FIELD = "result"  # the results-stream entry's MatchResult JSON
REDRIVEN_FROM_FIELD = "redriven_from"  # set on a redriven entry: the dead-letter entry id

ID_FIELD = "id"
REASON_FIELD = "reason"
ERROR_FIELD = "error"
OTHER_FIELDS_FIELD = "fields"
ERROR_MAX = 2000


class Reason(StrEnum):
    """Why an entry was dead-lettered. The first six are poison, dead-lettered at once."""

    MISSING_RESULT = "missing_result"  # no `result` field
    BAD_JSON = "bad_json"  # `result` is not a JSON object
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"  # not `RESULT_SCHEMA_VERSION`
    INVALID_RESULT = "invalid_result"  # does not validate as a MatchResult
    UNKNOWN_MODE = "unknown_mode"  # the mode is not in the worker's catalogue
    INVALID_PLAYER = "invalid_player"  # a player id that is not a user id (UUID)
    STORE_FAILED = "store_failed"  # PostgreSQL refused it `max_attempts` times
    TOO_MANY_DELIVERIES = "too_many_deliveries"  # delivered more than `max_deliveries`


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def dead_letter_fields(
    original_id: str, original: Mapping[Any, Any], reason: Reason, error: str
) -> dict[str, bytes | str]:
    """The fields to XADD to the dead letter for one results-stream entry."""
    out: dict[str, bytes | str] = {
        ID_FIELD: original_id,
        REASON_FIELD: reason.value,
        ERROR_FIELD: error[:ERROR_MAX],
    }
    others: dict[str, str] = {}
    for name, value in original.items():
        if _text(name) == RESULT_FIELD:
            out[RESULT_FIELD] = value
        else:
            others[_text(name)] = _text(value)
    if others:
        out[OTHER_FIELDS_FIELD] = json.dumps(others, sort_keys=True)
    return out


def entry_ms(entry_id: str) -> int:
    """The milliseconds part of a stream entry id; ValueError when it is not one."""
    ms, sep, seq = entry_id.partition("-")
    if not (ms.isdigit() and sep and seq.isdigit()):
        raise ValueError(f"{entry_id!r} is not a stream entry id (like 1790000000000-0)")
    return int(ms)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter entry, as read back."""

    entry_id: str  # in the dead letter
    original_id: str  # in the results stream
    reason: str  # a Reason value (kept as text: a newer worker may know more codes)
    error: str
    result: bytes | None  # the original `result` field
    fields: dict[str, str] = field(default_factory=dict)  # the original's other fields

    @classmethod
    def from_stream(cls, entry_id: bytes | str, raw: Mapping[Any, Any]) -> DeadLetter:
        got = {_text(k): v for k, v in raw.items()}
        others: dict[str, str] = {}
        if OTHER_FIELDS_FIELD in got:
            try:
                doc = json.loads(got[OTHER_FIELDS_FIELD])
            except (ValueError, UnicodeDecodeError):
                doc = {}
            if isinstance(doc, dict):
                others = {str(k): str(v) for k, v in doc.items()}
        result = got.get(RESULT_FIELD)
        return cls(
            entry_id=_text(entry_id),
            original_id=_text(got.get(ID_FIELD, "")),
            reason=_text(got.get(REASON_FIELD, "")),
            error=_text(got.get(ERROR_FIELD, "")),
            result=result.encode() if isinstance(result, str) else result,
            fields=others,
        )

    @property
    def dead_lettered_ms(self) -> int:
        return entry_ms(self.entry_id)

    @property
    def match_id(self) -> str | None:
        """The payload's `match_id`, when it is a JSON object that has one."""
        if not self.result:
            return None
        try:
            doc = json.loads(self.result)
        except (ValueError, UnicodeDecodeError):
            return None
        value = doc.get("match_id") if isinstance(doc, dict) else None
        return value if isinstance(value, str) and value else None

    def redrive_fields(self) -> dict[str, bytes | str]:
        """The original entry's fields, to put back on the results stream, marked with
        this dead-letter entry's id."""
        out: dict[str, bytes | str] = {**self.fields, REDRIVEN_FROM_FIELD: self.entry_id}
        if self.result is not None:
            out[RESULT_FIELD] = self.result
        return out

    def document(self) -> dict[str, Any]:
        """The whole entry as JSON-able data (for `dlq show --json` and the audit row).
        A `result` that is not text PostgreSQL can store is given as `result_hex`."""
        doc: dict[str, Any] = {
            "id": self.entry_id,
            "original_id": self.original_id,
            "reason": self.reason,
            "error": self.error,
            "match_id": self.match_id,
            "fields": dict(self.fields),
        }
        if self.result is None:
            doc["result"] = None
        else:
            try:
                text = self.result.decode()
            except UnicodeDecodeError:
                text = None
            if text is None or "\x00" in text:
                doc["result_hex"] = self.result.hex()
            else:
                doc["result"] = text
        return doc
