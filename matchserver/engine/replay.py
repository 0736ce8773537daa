"""Verify a recorded match: recompute it from (rules, log) and compare with its result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .log import MatchRecord
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


def verify(record: MatchRecord) -> Verification:
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
