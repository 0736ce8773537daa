"""Private matches by invite code, as pure rules: no I/O, no clock (times are passed in).

A private match is a room a host opens for one mode, format and size; whoever holds
its code joins until it is full. It starts when the host says (with at least the
mode's `min` players), or by itself at the mode's `countdown_ms` after creation once
`min` have joined; a room not started by its expiry is closed (state `expired`).

* **Codes** are `CODE_LENGTH` characters from `CODE_ALPHABET`: digits and consonants
  without the look-alikes (0/O, 1/I/L) and without vowels (no words), drawn with
  `secrets`. 28**8 is about 3.8e11 codes; joins are rate-limited, so guessing one
  is hopeless. Input is read leniently (case, spaces, dashes).
* **Sizes** are within the mode's players `min..max`; the invitees (other players,
  no duplicates) are at most the free seats plus `EXTRA_INVITES`: seats go to whoever
  joins first, and an invitee may watch the match anyway (spectate, replay).
* **Who may**: anyone with the code joins an open room that is not full and has not
  expired; only the host starts or cancels; a host who leaves cancels.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tradearena.modes import Catalogue

CODE_ALPHABET = "23456789BCDFGHJKMNPQRSTVWXZ"
CODE_LENGTH = 8
# Invitees beyond a room's free seats: friends who may watch it, or take a seat if one
# of the others does not come.
EXTRA_INVITES = 8
LINK_PREFIX = "#/private/"

State = Literal["open", "starting", "started", "cancelled", "expired"]
OPEN: State = "open"
CLOSED_STATES: frozenset[str] = frozenset({"cancelled", "expired"})


class PrivateRuleError(Exception):
    """A refusal with a stable problem code and its HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def new_code(choice: Callable[[str], str] = secrets.choice) -> str:
    return "".join(choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str | None:
    """The code a player typed or pasted (any case, spaces or dashes), or None."""
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def link(code: str) -> str:
    return LINK_PREFIX + code


@dataclass(frozen=True)
class PrivateSpec:
    """A validated request to open a room."""

    mode: str
    format: str
    size: int
    min_players: int
    countdown_ms: int
    invite: tuple[str, ...]  # usernames, deduplicated, in the order given


def validate(
    catalogue: Catalogue,
    mode: str,
    fmt: str,
    size: int | None,
    invite: Sequence[str],
    host_username: str,
) -> PrivateSpec:
    """The room a host may open, or a `PrivateRuleError` saying why not."""
    if mode not in catalogue.modes:
        raise PrivateRuleError(422, "unknown_mode", f"unknown mode {mode!r}")
    if fmt not in catalogue.formats:
        raise PrivateRuleError(422, "unknown_format", f"unknown format {fmt!r} (no auto here)")
    players = catalogue.modes[mode].players
    size = players.recommended if size is None else size
    if not players.min <= size <= players.max:
        raise PrivateRuleError(
            422,
            "invalid_size",
            f"mode {mode!r} takes {players.min}..{players.max} players, not {size}",
        )
    names = tuple(dict.fromkeys(name.lower() for name in invite))
    if host_username.lower() in names:
        raise PrivateRuleError(422, "invite_self", "the host is in the match already")
    if len(names) > size - 1 + EXTRA_INVITES:
        raise PrivateRuleError(
            422,
            "too_many_invites",
            f"{len(names)} invitees for {size - 1} free seats (at most {EXTRA_INVITES} more)",
        )
    return PrivateSpec(mode, fmt, size, players.min, catalogue.modes[mode].countdown_ms, names)


@dataclass(frozen=True)
class Member:
    user_id: str
    username: str


@dataclass(frozen=True)
class Room:
    """A private match's state, as stored (JSON) in Redis."""

    code: str
    match_id: str
    host: Member
    mode: str
    format: str
    size: int
    min_players: int
    created_at_ms: int
    start_at_ms: int  # the countdown: the room starts by itself then, with `min` joined
    expires_at_ms: int
    state: State = OPEN
    joined: tuple[Member, ...] = ()
    invited: tuple[Member, ...] = ()

    def has(self, user_id: str) -> bool:
        return any(m.user_id == user_id for m in self.joined)

    @property
    def full(self) -> bool:
        return len(self.joined) >= self.size

    def to_json(self) -> dict[str, Any]:
        def member(m: Member) -> dict[str, str]:
            return {"user_id": m.user_id, "username": m.username}

        return {
            "code": self.code,
            "match_id": self.match_id,
            "host": member(self.host),
            "mode": self.mode,
            "format": self.format,
            "size": self.size,
            "min": self.min_players,
            "created_at": self.created_at_ms,
            "start_at": self.start_at_ms,
            "expires_at": self.expires_at_ms,
            "state": self.state,
            "joined": [member(m) for m in self.joined],
            "invited": [member(m) for m in self.invited],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Room:
        def member(d: dict[str, Any]) -> Member:
            return Member(str(d["user_id"]), str(d["username"]))

        return cls(
            code=raw["code"],
            match_id=raw["match_id"],
            host=member(raw["host"]),
            mode=raw["mode"],
            format=raw["format"],
            size=int(raw["size"]),
            min_players=int(raw["min"]),
            created_at_ms=int(raw["created_at"]),
            start_at_ms=int(raw["start_at"]),
            expires_at_ms=int(raw["expires_at"]),
            state=raw["state"],
            joined=tuple(member(m) for m in raw.get("joined") or ()),
            invited=tuple(member(m) for m in raw.get("invited") or ()),
        )


def open_room(
    spec: PrivateSpec,
    code: str,
    match_id: str,
    host: Member,
    invited: Sequence[Member],
    now_ms: int,
    ttl_s: int,
) -> Room:
    """A new room; the host has joined. It expires `ttl_s` after creation, but never
    before its countdown has run out (so the countdown can start it)."""
    start_at = now_ms + spec.countdown_ms
    expires_at = max(now_ms + ttl_s * 1000, start_at + 1000)
    return Room(
        code=code,
        match_id=match_id,
        host=host,
        mode=spec.mode,
        format=spec.format,
        size=spec.size,
        min_players=spec.min_players,
        created_at_ms=now_ms,
        start_at_ms=start_at,
        expires_at_ms=expires_at,
        joined=(host,),
        invited=tuple(invited),
    )


def check_open(room: Room, now_ms: int) -> None:
    if room.state in CLOSED_STATES or (room.state == OPEN and now_ms >= room.expires_at_ms):
        raise PrivateRuleError(410, "private_closed", f"this private match is {room.state}")
    if room.state != OPEN:
        raise PrivateRuleError(409, "private_started", "this private match has started")


def check_join(room: Room, user_id: str, now_ms: int) -> bool:
    """May the player join? False: already in (joining again changes nothing)."""
    if room.has(user_id):
        return False
    check_open(room, now_ms)
    if room.full:
        raise PrivateRuleError(409, "private_full", f"all {room.size} seats are taken")
    return True


def check_start(room: Room, user_id: str, now_ms: int) -> None:
    if user_id != room.host.user_id:
        raise PrivateRuleError(403, "not_host", "only the host starts the match")
    check_open(room, now_ms)
    if len(room.joined) < room.min_players:
        raise PrivateRuleError(
            409,
            "not_enough_players",
            f"{len(room.joined)} joined; the mode needs at least {room.min_players}",
        )


def check_cancel(room: Room, user_id: str, now_ms: int) -> None:
    if user_id != room.host.user_id:
        raise PrivateRuleError(403, "not_host", "only the host cancels the match")
    check_open(room, now_ms)


Action = Literal["start", "expire", "wait"]


def due_action(room: Room, now_ms: int) -> tuple[Action, int]:
    """What the background task does with a room now, and when to look again."""
    if room.state != OPEN:
        return "wait", 0
    if now_ms >= room.expires_at_ms:
        return "expire", 0
    if now_ms >= room.start_at_ms and len(room.joined) >= room.min_players:
        return "start", 0
    if now_ms >= room.start_at_ms:
        return "wait", room.expires_at_ms  # a join re-arms the countdown at once
    return "wait", room.start_at_ms
