"""Verify a recorded match: recompute it from (rules, log) and compare with its result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .log import LogEntry, MatchRecord
from .match import replay_entries


@dataclass(frozen=True)
class Verification:
    differences: list[str]
    result: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.differences


def diff(recorded: Any, replayed: Any, path: str = "result") -> list[str]:
    """Human-readable differences, one line per differing leaf."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        out: list[str] = []
        for key in sorted(set(recorded) | set(replayed), key=str):
            if key not in replayed:
                out.append(f"{path}.{key}: recorded {recorded[key]!r}, missing in replay")
            elif key not in recorded:
                out.append(f"{path}.{key}: not recorded, replay gives {replayed[key]!r}")
            else:
                out.extend(diff(recorded[key], replayed[key], f"{path}.{key}"))
        return out
    if isinstance(recorded, list) and isinstance(replayed, list):
        out = []
        if len(recorded) != len(replayed):
            out.append(f"{path}: recorded {len(recorded)} items, replay gives {len(replayed)}")
        for i, (a, b) in enumerate(zip(recorded, replayed, strict=False)):
            out.extend(diff(a, b, f"{path}[{i}]"))
        return out
    if recorded != replayed:
        return [f"{path}: recorded {recorded!r}, replay gives {replayed!r}"]
    return []


def sequence_problems(entries: Sequence[LogEntry]) -> list[str]:
    """What breaks the log's order: entries numbered 1, 2, 3... each once, in time order.

    A log that was read but has an entry dropped, duplicated or moved is a log that
    does not match its match: these are differences, reported before any replay.
    """
    seqs = [e.seq for e in entries]
    counts = Counter(seqs)
    out = [f"log: entry {seq} appears {n} times" for seq, n in sorted(counts.items()) if n > 1]
    top = max(seqs, default=0)
    missing = [seq for seq in range(1, top + 1) if seq not in counts]
    out += [f"log: entry {seq} is missing" for seq in missing[:20]]
    if len(missing) > 20:
        out.append(f"log: {len(missing) - 20} more entries are missing")
    out += [
        f"log: entry {first} comes before entry {second}"
        for first, second in pairwise(seqs)
        if first > second
    ]
    out += [f"log: entry {seq} is numbered below 1" for seq in sorted(counts) if seq < 1]
    if not out:
        out += [
            f"log: entry {b.seq} at {b.at} is earlier than entry {a.seq} at {a.at}"
            for a, b in pairwise(entries)
            if b.at < a.at
        ]
    return out


def _in_order(entries: Sequence[LogEntry]) -> int:
    """How many entries, from the first, are numbered and timed in order."""
    for i, entry in enumerate(entries):
        if entry.seq != i + 1 or (i > 0 and entry.at < entries[i - 1].at):
            return i
    return len(entries)


def verify(record: MatchRecord) -> Verification:
    broken = sequence_problems(record.entries)
    if broken:
        # Replay stops where the order breaks; the result cannot be compared meaningfully.
        good = _in_order(record.entries)
        match, _ = replay_entries(record.header, record.entries[:good])
        return Verification(broken, match.result())
    until = record.result.get("ended_at") if record.result else None
    match, mismatches = replay_entries(record.header, record.entries, until=until)
    replayed = match.result()
    differences = list(mismatches)
    differences += [f"ledger: {problem}" for problem in match.reconcile()]
    if record.result is None:
        differences.append("the log has no recorded result to verify against")
    else:
        differences += diff(record.result, replayed)
    return Verification(differences, replayed)
