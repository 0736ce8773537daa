"""Stable rejection codes: clients switch on `code`, humans read `message`."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    OK = "ok"
    DELAYED = "delayed"  # accepted; executes later because of an active trade_delay
    INVALID_ACTION = "invalid_action"
    UNKNOWN_PLAYER = "unknown_player"
    PLAYER_ABANDONED = "player_abandoned"
    MATCH_NOT_LIVE = "match_not_live"
    FEED_STALE = "feed_stale"
    RATE_LIMITED = "rate_limited"
    COOLDOWN = "cooldown"
    INVALID_LEVERAGE = "invalid_leverage"
    INVALID_MARGIN = "invalid_margin"
    ORDER_TOO_SMALL = "order_too_small"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    NO_POSITION = "no_position"
    INVALID_FRACTION = "invalid_fraction"
    INVALID_STOPS = "invalid_stops"
    NOT_ENOUGH_CHARGES = "not_enough_charges"
    INVALID_TARGET = "invalid_target"
    TARGET_SHIELDED = "target_shielded"
    PEEK_NOT_READY = "peek_not_ready"
    MATCH_OVER = "match_over"


MESSAGES: dict[Code, str] = {
    Code.OK: "accepted",
    Code.DELAYED: "accepted; executes after the trade delay",
    Code.INVALID_ACTION: "the action is malformed",
    Code.UNKNOWN_PLAYER: "this player is not in the match",
    Code.PLAYER_ABANDONED: "the player has abandoned the match",
    Code.MATCH_NOT_LIVE: "the match is not live",
    Code.FEED_STALE: "trading is frozen: the price feed is stale",
    Code.RATE_LIMITED: "too many actions; slow down",
    Code.COOLDOWN: "orders are locked during the trade cooldown",
    Code.INVALID_LEVERAGE: "leverage is out of range",
    Code.INVALID_MARGIN: "margin is below the minimum",
    Code.ORDER_TOO_SMALL: "the order rounds to zero quantity",
    Code.INSUFFICIENT_BALANCE: "the balance does not cover margin and fees",
    Code.NO_POSITION: "there is no open position",
    Code.INVALID_FRACTION: "fraction must be greater than 0 and at most 1",
    Code.INVALID_STOPS: "stop-loss or take-profit is on the wrong side of the price",
    Code.NOT_ENOUGH_CHARGES: "not enough Action Bar charges",
    Code.INVALID_TARGET: "the ability target is not an active opponent",
    Code.TARGET_SHIELDED: "the target is shielded",
    Code.PEEK_NOT_READY: "the Peek Meter is not full",
    Code.MATCH_OVER: "the match ended before the order executed",
}
