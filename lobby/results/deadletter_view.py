"""What `tradearena dlq` selects and prints, without I/O: the selection of entries to
act on, ages, one-line error summaries, the list table and the JSON documents."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tradearena.contracts.deadletter import DeadLetter, entry_ms

SUMMARY_WIDTH = 60


class SelectionError(ValueError):
    """The command line selects nothing sensible (bad ids, no selector)."""


@dataclass(frozen=True)
class Selection:
    """Entries named by id, or every entry with a reason code, or every entry."""

    ids: tuple[str, ...] = ()
    reason: str | None = None
    every: bool = False

    def __post_init__(self) -> None:
        given = sum((bool(self.ids), self.reason is not None, self.every))
        if given != 1:
            raise SelectionError("give entry ids, --reason CODE or --all (exactly one)")
        for entry_id in self.ids:
            try:
                entry_ms(entry_id)
            except ValueError as exc:
                raise SelectionError(str(exc)) from None
        if len(set(self.ids)) != len(self.ids):
            raise SelectionError("an entry id is given twice")

    def wants(self, letter: DeadLetter) -> bool:
        """Whether a scanned entry is selected (`--reason` and `--all`)."""
        return self.every or (self.reason is not None and letter.reason == self.reason)


def age_text(seconds: float) -> str:
    """A compact age: 42s, 7m, 3h12m, 2d4h."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def summary(error: str, width: int = SUMMARY_WIDTH) -> str:
    """The error on one line, cut to `width` characters."""
    line = " ".join(error.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def row(letter: DeadLetter, now_ms: int) -> dict[str, Any]:
    """One entry of `dlq list --json`."""
    at = letter.dead_lettered_ms
    return {
        "id": letter.entry_id,
        "original_id": letter.original_id,
        "dead_lettered_at": _iso(at),
        "age_s": max(now_ms - at, 0) / 1000,
        "match_id": letter.match_id,
        "reason": letter.reason,
        "error": summary(letter.error),
    }


def table(letters: Sequence[DeadLetter], now_ms: int, total: int) -> str:
    """`dlq list`: one line per entry under a header, then how many of how many."""
    head = ("ID", "AGE", "MATCH", "REASON", "ERROR")
    lines = [
        (
            d.entry_id,
            age_text((now_ms - d.dead_lettered_ms) / 1000),
            d.match_id or "-",
            d.reason,
            summary(d.error),
        )
        for d in letters
    ]
    widths = [max(len(r[i]) for r in (head, *lines)) for i in range(len(head) - 1)]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in (head, *lines)
    ]
    out.append(f"{len(letters)} shown, {total} in the dead letter")
    return "\n".join(out)


def show(letter: DeadLetter, now_ms: int) -> str:
    """`dlq show`: every field, then the original payload (pretty when it is JSON)."""
    doc = letter.document()
    at = letter.dead_lettered_ms
    lines = [
        f"id:              {letter.entry_id}",
        f"original id:     {letter.original_id}",
        f"dead-lettered:   {_iso(at)} ({age_text((now_ms - at) / 1000)} ago)",
        f"reason:          {letter.reason}",
        f"match id:        {letter.match_id or '-'}",
    ]
    lines += [f"field {k}: {v}" for k, v in sorted(letter.fields.items())]
    lines += ["error:", *("  " + ln for ln in letter.error.splitlines() or [""])]
    if "result_hex" in doc:
        lines += ["result (not UTF-8 text, hex):", doc["result_hex"]]
    elif doc["result"] is None:
        lines.append("result: (the original entry had no result field)")
    else:
        lines += ["result:", pretty(doc["result"])]
    return "\n".join(lines)


def show_document(letter: DeadLetter, now_ms: int) -> dict[str, Any]:
    """`dlq show --json`: the whole entry and its age."""
    return {**row(letter, now_ms), **letter.document()}


def pretty(payload: str) -> str:
    """A JSON payload indented, anything else as it is."""
    try:
        return json.dumps(json.loads(payload), indent=2)
    except ValueError:
        return payload


def unknown(ids: Iterable[str], found: Iterable[DeadLetter]) -> list[str]:
    """The requested ids that are not in the dead letter, in the order given."""
    have = {d.entry_id for d in found}
    return [i for i in ids if i not in have]
