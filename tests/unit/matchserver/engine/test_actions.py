"""Wire actions: shape validation and the logged form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchserver.engine.actions import (
    ActionError,
    action_to_wire,
    parse_action,
    parse_logged_action,
)

coids = st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True)
amounts = st.decimals(
    min_value=Decimal("0.00000001"), max_value=Decimal("9999999999999999"), places=8
).map(lambda d: d.normalize() if d == d.to_integral() else d)
# plain decimal strings as clients send them, JSON integers too (Decimal fields accept both)
amount_inputs = st.one_of(
    amounts.map(lambda d: format(d, "f")), st.integers(1, 10**9), st.sampled_from(["100", "0.50"])
)
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731

actions = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("open"),
            "client_order_id": coids,
            "side": st.sampled_from(["long", "short"]),
            "margin": amount_inputs,
            "leverage": st.integers(1, 1000),
        },
        optional={"stop_loss": maybe(amount_inputs), "take_profit": maybe(amount_inputs)},
    ),
    st.fixed_dictionaries(
        {"type": st.just("close"), "client_order_id": coids},
        optional={"fraction": st.sampled_from(["1", "0.5", "0.25000000", "0.00000001"])},
    ),
    st.fixed_dictionaries(
        {"type": st.just("set_stops"), "client_order_id": coids},
        optional={"stop_loss": maybe(amount_inputs), "take_profit": maybe(amount_inputs)},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("ability"),
            "client_order_id": coids,
            "ability": st.sampled_from(["trade_delay", "shield"]),
        },
        optional={"target": maybe(st.sampled_from(["leader", "p1", "someone-else"]))},
    ),
    st.fixed_dictionaries({"type": st.just("peek"), "client_order_id": coids}),
)


@given(actions)
def test_logged_form_is_pydantics_json_dump_and_parses_back(wire: dict[str, Any]) -> None:
    action = parse_action(wire)
    logged = action_to_wire(action)
    assert logged == action.model_dump(mode="json", exclude_none=True)
    assert list(logged) == list(action.model_dump(mode="json", exclude_none=True))
    assert parse_logged_action(logged) == action


@pytest.mark.parametrize(
    ("wire", "where"),
    [
        (
            {
                "type": "open",
                "client_order_id": "a",
                "side": "long",
                "margin": "1.123456789",
                "leverage": 2,
            },
            "open.margin",
        ),
        (
            {"type": "open", "client_order_id": "a", "side": "up", "margin": "1", "leverage": 2},
            "open.side",
        ),
        ({"type": "close", "client_order_id": "a", "fraction": "1.5"}, "close.fraction"),
        ({"type": "peek", "client_order_id": "a b"}, "peek.client_order_id"),
        ({"type": "peek", "client_order_id": "a", "extra": 1}, "peek.extra"),
        ({"type": "warp", "client_order_id": "a"}, "action"),
    ],
)
def test_malformed_actions_say_where(wire: dict[str, Any], where: str) -> None:
    with pytest.raises(ActionError) as err:
        parse_action(wire)
    assert err.value.message.startswith(f"{where}:"), err.value.message
    assert err.value.client_order_id == wire["client_order_id"]


# Numbers as a loose client might send them: every one must be refused, never coerced.
_loose_decimals = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=1, max_value=10**6, places=2).map(lambda d: f"{d:E}"),  # exponent
    st.integers(1, 10**6).map(lambda n: f"{n:_}" if n >= 1000 else f"{n}_0"),  # underscores
    st.tuples(
        st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003"]),
        amounts.map(str),
        st.booleans(),
    ).map(lambda t: t[0] + t[1] if t[2] else t[1] + t[0]),  # surrounding spaces
    st.sampled_from(["+1", "-0", ".5", "5.", "0x10", "1e3", "NaN", "Infinity", "01", "١٢"]),
    st.lists(st.integers(1, 9), min_size=1, max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
_loose_leverages = st.one_of(
    st.booleans(),
    st.floats(),
    st.integers(1, 1000).map(str),
    st.integers(1, 1000).map(lambda n: f" {n} "),
    st.just(None),
)
_open = {"type": "open", "client_order_id": "o1", "side": "long", "margin": "10", "leverage": 2}


@given(
    st.sampled_from(
        [
            ("open", "margin"),
            ("open", "stop_loss"),
            ("open", "take_profit"),
            ("set_stops", "stop_loss"),
            ("set_stops", "take_profit"),
            ("close", "fraction"),
        ]
    ),
    _loose_decimals,
)
def test_loose_decimals_are_refused(field: tuple[str, str], value: Any) -> None:
    kind, name = field
    wire = dict(_open) if kind == "open" else {"type": kind, "client_order_id": "o1"}
    wire[name] = value
    with pytest.raises(ActionError) as err:
        parse_action(wire)
    assert err.value.message.startswith(f"{kind}.{name}:"), err.value.message


@given(_loose_leverages)
def test_loose_leverage_is_refused(value: Any) -> None:
    with pytest.raises(ActionError) as err:
        parse_action({**_open, "leverage": value})
    assert err.value.message.startswith("open.leverage:"), err.value.message


@pytest.mark.parametrize(
    ("name", "value"),
    [("margin", "10"), ("margin", 10), ("margin", "0.5"), ("stop_loss", "12345.67")],
)
def test_canonical_numbers_are_accepted(name: str, value: Any) -> None:
    action = parse_action({**_open, name: value})
    assert str(getattr(action, name)) == str(value)
