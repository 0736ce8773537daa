"""The append-only match log: every input the engine accepted, in order.

A match's result is a pure function of (rules, this log): replaying the entries
through a fresh engine must give the identical result. The file form is JSON
lines: one header, the entries, and the result once the match has ended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

LOG_SCHEMA = 1

# Entry kinds, the engine inputs that change state.
PRICE = "price"  # a feed price arrived (becomes official after the delay)
START = "start"
ACTION = "action"  # a player action that passed the rate limiter, with its outcome code
CONNECT = "connect"
DISCONNECT = "disconnect"
STOP = "stop"  # settled early (shutdown) or cancelled
RESTART = "restart"  # the server restarted: every connection was lost, through no fault of players


class LogEntry(NamedTuple):
    """Immutable; a tuple because every input makes one."""

    seq: int
    at: int
    kind: str
    player: str | None = None
    data: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "at": self.at, "kind": self.kind}
        if self.player is not None:
            out["player"] = self.player
        if self.data is not None:
            out["data"] = self.data
        return out

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> LogEntry:
        return cls(
            int(raw["seq"]), int(raw["at"]), str(raw["kind"]), raw.get("player"), raw.get("data")
        )


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def digest(entries: Iterable[LogEntry]) -> str:
    h = hashlib.sha256()
    for entry in entries:
        h.update(dumps(entry.to_wire()).encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class MatchRecord:
    """Header + entries + (optional) recorded result: everything replay needs."""

    header: dict[str, Any]
    entries: list[LogEntry]
    result: dict[str, Any] | None

    def lines(self) -> Iterator[str]:
        yield dumps({"type": "header", **self.header})
        for entry in self.entries:
            yield dumps({"type": "entry", **entry.to_wire()})
        if self.result is not None:
            yield dumps({"type": "result", **self.result})

    def write(self, path: Path) -> None:
        path.write_text("".join(line + "\n" for line in self.lines()), encoding="utf-8")

    @classmethod
    def parse(cls, lines: Iterable[str]) -> MatchRecord:
        header: dict[str, Any] | None = None
        entries: list[LogEntry] = []
        result: dict[str, Any] | None = None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                kind = raw.pop("type")
            except (ValueError, KeyError, AttributeError, TypeError) as exc:
                raise ValueError(f"line {number}: not a log record ({exc})") from None
            if kind == "header":
                header = raw
            elif kind == "entry":
                try:
                    entries.append(LogEntry.from_wire(raw))
                except KeyError as exc:
                    raise ValueError(f"line {number}: entry lacks the field {exc}") from None
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"line {number}: malformed entry ({exc})") from None
            elif kind == "result":
                result = raw
            else:
                raise ValueError(f"line {number}: unknown record type {kind!r}")
        if header is None:
            raise ValueError("the log has no header line")
        if header.get("schema") != LOG_SCHEMA:
            raise ValueError(f"unsupported log schema {header.get('schema')!r}")
        return cls(header, entries, result)

    @classmethod
    def read(cls, path: Path) -> MatchRecord:
        with path.open(encoding="utf-8") as fh:
            return cls.parse(fh)
