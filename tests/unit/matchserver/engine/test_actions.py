"""Wire actions: shape validation and the logged form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchserver.engine.actions import ActionError, action_to_wire, parse_action

coids = st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True)
amounts = st.decimals(
    min_value=Decimal("0.00000001"), max_value=Decimal("9999999999999999"), places=8
).map(lambda d: d.normalize() if d == d.to_integral() else d)
# strings as clients send them, numbers too (Decimal fields accept both)
amount_inputs = st.one_of(
    amounts.map(str), st.integers(1, 10**9), st.sampled_from(["1E+2", "0.50"])
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
    assert parse_action(logged) == action


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
