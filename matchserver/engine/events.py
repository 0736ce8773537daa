"""What the engine tells the outside world: acknowledgements and events.

Events are plain data with JSON-ready payloads; the server decides how to send
them (`to=None` means everyone in the match).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .codes import MESSAGES, Code


class Ack(NamedTuple):
    """Immutable; a tuple because every action makes one."""

    ok: bool
    code: Code
    message: str
    data: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "code": str(self.code), "message": self.message}
        if self.data:
            out.update(self.data)
        return out


def accept(code: Code = Code.OK, **data: Any) -> Ack:
    return Ack(True, code, MESSAGES[code], data)


def reject(code: Code, message: str | None = None) -> Ack:
    return Ack(False, code, message or MESSAGES[code], {})


class Event(NamedTuple):
    """kind: tick | fill | rejected | effect | peek | phase | feed | player | charges | match_end"""

    kind: str
    data: dict[str, Any]
    to: str | None = None
