"""Player actions as they arrive on the wire, validated for shape (not for game rules).

Shape errors (wrong types, unknown fields, bad numbers) are caught here and become
`invalid_action`; game-rule errors (balance, cooldown, ...) are the engine's job.

Numbers are taken only in their exact wire forms, never coerced: money, prices and
fractions are plain decimal strings (`"12.5"`, `"100"`) or JSON integers; leverage is
a JSON integer. Booleans, floats, exponents, signs, underscores, surrounding spaces
and non-ASCII digits are refused. Entries read back from the match's own log
(`parse_logged_action`) skip that check: they are in the logged form, which
`str(Decimal)` may write with an exponent (`"1E-8"`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError

ClientOrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Amount = Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=8, allow_inf_nan=False)]
Price = Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=8, allow_inf_nan=False)]


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    client_order_id: ClientOrderId

    def to_wire(self) -> dict[str, Any]:
        """The logged form: `model_dump(mode="json", exclude_none=True)`, written out
        because every accepted action is logged (a test holds the two equal)."""
        raise NotImplementedError


class OpenOrder(_Action):
    """Market order: opens, adds to, reduces or flips the player's one net position."""

    type: Literal["open"] = "open"
    side: Literal["long", "short"]
    margin: Amount
    leverage: Annotated[int, Strict(), Field(ge=1, le=1000)]
    stop_loss: Price | None = None
    take_profit: Price | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_order_id": self.client_order_id,
            "type": "open",
            "side": self.side,
            "margin": str(self.margin),
            "leverage": self.leverage,
        }
        if self.stop_loss is not None:
            out["stop_loss"] = str(self.stop_loss)
        if self.take_profit is not None:
            out["take_profit"] = str(self.take_profit)
        return out


class ClosePosition(_Action):
    type: Literal["close"] = "close"
    fraction: Annotated[Decimal, Field(gt=0, le=1, decimal_places=8)] = Decimal(1)

    def to_wire(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "type": "close",
            "fraction": str(self.fraction),
        }


class SetStops(_Action):
    """Replaces both levels: send the one to keep again, null clears."""

    type: Literal["set_stops"] = "set_stops"
    stop_loss: Price | None = None
    take_profit: Price | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"client_order_id": self.client_order_id, "type": "set_stops"}
        if self.stop_loss is not None:
            out["stop_loss"] = str(self.stop_loss)
        if self.take_profit is not None:
            out["take_profit"] = str(self.take_profit)
        return out


class UseAbility(_Action):
    type: Literal["ability"] = "ability"
    ability: Literal["trade_delay", "shield"]
    target: Annotated[str, Field(min_length=1, max_length=128)] | None = None  # id or "leader"

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_order_id": self.client_order_id,
            "type": "ability",
            "ability": self.ability,
        }
        if self.target is not None:
            out["target"] = self.target
        return out


class Peek(_Action):
    type: Literal["peek"] = "peek"

    def to_wire(self) -> dict[str, Any]:
        return {"client_order_id": self.client_order_id, "type": "peek"}


Action = Annotated[
    OpenOrder | ClosePosition | SetStops | UseAbility | Peek, Field(discriminator="type")
]
_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)
# The adapter's core validator, called directly: TypeAdapter.validate_python's own
# argument handling costs as much as validating a Peek.
_VALIDATE = _ADAPTER.validator.validate_python


class ActionError(ValueError):
    """The payload is not a well-formed action; `message` says where and why."""

    def __init__(self, message: str, client_order_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.client_order_id = client_order_id


# A plain decimal: no sign, exponent, spaces or underscores, ASCII digits only, no
# leading zero before other digits. Pydantic's own checks (places, digits, > 0) follow.
_DECIMAL_TEXT = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_DECIMAL_FIELDS = ("margin", "stop_loss", "take_profit", "fraction")
_DECIMAL_RULE = 'must be a decimal string such as "12.5" or a JSON integer'


def _loose_decimal(value: Any) -> bool:
    if value is None or (type(value) is int):
        return False
    return not (type(value) is str and _DECIMAL_TEXT.fullmatch(value) is not None)


def parse_action(payload: Any) -> Action:
    """A client's action, its numbers in their exact wire forms only."""
    if isinstance(payload, dict):
        for name in _DECIMAL_FIELDS:
            if name in payload and _loose_decimal(payload[name]):
                kind = payload.get("type")
                where = f"{kind}.{name}" if isinstance(kind, str) else name
                coid = payload.get("client_order_id")
                raise ActionError(
                    f"{where}: {_DECIMAL_RULE}", coid if isinstance(coid, str) else None
                )
    return parse_logged_action(payload)


def parse_logged_action(payload: Any) -> Action:
    """An action in its logged form (`action_to_wire`), as the match's log holds it."""
    try:
        action: Action = _VALIDATE(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "action"
        coid = payload.get("client_order_id") if isinstance(payload, dict) else None
        raise ActionError(
            f"{where}: {first['msg']}", coid if isinstance(coid, str) else None
        ) from None
    return action


def action_to_wire(action: Action) -> dict[str, Any]:
    return action.to_wire()
