"""Request and response bodies of the accounts side of the REST API (pydantic).

They are the OpenAPI document's component schemas, so the document and the
validation can never disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
)

from tradearena.modes import default_catalogue

USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{3,32}$"
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
DbId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a bigint id


def _stripped(value: str) -> str:
    """Surrounding whitespace is dropped after the length check (the documented limits
    apply to what was sent); nothing may remain empty."""
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=32), AfterValidator(_stripped)
]


def mode_names() -> list[str]:
    return sorted(default_catalogue().modes)


def format_names() -> list[str]:
    return [*default_catalogue().formats, "auto"]


def _enum(values: list[str], nullable: bool = False) -> dict[str, JsonValue]:
    """The allowed values in the schema; `nullable`: null too (an optional field's
    enum applies to the whole field, so without it null would be documented as invalid)."""
    items: list[JsonValue] = [*values, None] if nullable else [*values]
    return {"enum": items}


class Body(BaseModel):
    """A request body or parameters, no unknown fields. The API validates bodies in
    strict JSON mode (no "1" for 1, no 0 for false) and parameters in lax mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is stable and machine-readable."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None
    retry_after: int | None = None


class RegisterRequest(Body):
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginRequest(Body):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password


class RefreshRequest(Body):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LogoutRequest(Body):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    everywhere: bool = False


class PlayerSettings(BaseModel):
    display_name: str
    preferred_mode: str = Field(json_schema_extra=_enum(mode_names()))
    preferred_format: str = Field(json_schema_extra=_enum(format_names()))
    sound: bool
    notifications: bool
    updated_at: datetime


class SettingsPatch(Body):
    display_name: DisplayName | None = None
    preferred_mode: str | None = Field(default=None, json_schema_extra=_enum(mode_names(), True))
    preferred_format: str | None = Field(
        default=None, json_schema_extra=_enum(format_names(), True)
    )
    sound: bool | None = None
    notifications: bool | None = None

    @field_validator("preferred_mode")
    @classmethod
    def _known_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in mode_names():
            raise ValueError(f"unknown mode; one of {', '.join(mode_names())}")
        return value

    @field_validator("preferred_format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in format_names():
            raise ValueError(f"unknown format; one of {', '.join(format_names())}")
        return value


class User(BaseModel):
    id: str
    username: str
    role: Literal["player", "admin"]
    created_at: datetime
    banned: bool = False


class Me(User):
    settings: PlayerSettings


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: User


class AdminUser(User):
    banned_at: datetime | None = None
    ban_reason: str | None = None


class AdminUserQuery(Body):
    username: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    banned: bool | None = None
    limit: int = Field(default=50, ge=1, le=200)


class AdminUserPage(BaseModel):
    items: list[AdminUser]


class BanRequest(Body):
    reason: Annotated[
        str, StringConstraints(min_length=1, max_length=500), AfterValidator(_stripped)
    ]


class UnbanRequest(Body):
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class AuditEntry(BaseModel):
    id: int
    actor_id: str
    actor_username: str
    action: str
    target_kind: str
    target_id: str
    payload: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None


class AuditQuery(Body):
    limit: int = Field(default=50, ge=1, le=200)
    before: DbId | None = None
    target_id: Annotated[str, StringConstraints(max_length=100)] | None = None


class UserPath(Body):
    user_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{36}$")]


class Notification(BaseModel):
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[Notification]
    unread: int
    next_before: int | None


class NotificationQuery(Body):
    unread_only: bool = False
    limit: int = Field(default=50, ge=1, le=200)
    before: DbId | None = None


class MarkRead(Body):
    ids: list[DbId] = Field(default_factory=list, max_length=500)
    all: bool = False


class MarkedRead(BaseModel):
    updated: int


class HistoryQuery(Body):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class HistoryItem(BaseModel):
    match_id: str
    mode: str
    format: str
    symbol: str
    phase: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    joined_at: datetime
    status: str
    rank: int | None
    equity: str | None  # exact decimal as a string
    realized_pnl: str | None
    fees: str | None
    trades: int
    kind: str = Field(default="ranked", json_schema_extra=_enum(["ranked", "casual", "private"]))


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_cursor: str | None


class MatchPath(Body):
    match_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]


class MatchPlayerResult(BaseModel):
    user_id: str
    username: str
    status: str
    rank: int | None
    equity: str | None
    realized_pnl: str | None
    fees: str | None
    trades: int
    rating_delta: float | None = None  # change of the rating ordinal; null when unrated


class MatchFill(BaseModel):
    """One fill (a trade) of a stored match, in the order it happened."""

    user_id: str
    username: str
    reason: str  # open | close | reduce | flip | stop_loss | take_profit | liquidation | ...
    side: Literal["buy", "sell"]
    qty: str  # exact decimals as strings
    price: str
    fee: str
    realized_pnl: str
    loss_capped: bool
    ref: str
    at: datetime


class MatchLedgerLine(BaseModel):
    """One double-entry transfer: `amount` from account `debit` to account `credit`."""

    seq: int
    at: datetime
    debit: str  # `<player id>:cash|margin` or `house:bankroll|pnl|fees`
    credit: str
    amount: str
    kind: str  # funding | margin_lock | margin_release | fee | pnl
    user_id: str | None
    ref: str


class LedgerBalance(BaseModel):
    """An account's balance once every ledger line is applied (the final ledger)."""

    account: str
    user_id: str | None  # the player owning the account; null for the house's
    username: str | None
    balance: str


class MatchDetail(BaseModel):
    match_id: str
    mode: str
    format: str
    symbol: str
    phase: str
    reason: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    final_price: str | None
    kind: str = Field(default="ranked", json_schema_extra=_enum(["ranked", "casual", "private"]))
    players: list[MatchPlayerResult]
    fills: list[MatchFill] = Field(default_factory=list)
    ledger: list[MatchLedgerLine] = Field(default_factory=list)
    balances: list[LedgerBalance] = Field(default_factory=list)


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]
