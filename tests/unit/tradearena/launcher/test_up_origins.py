"""The origins `up` gives its match servers: where its own lobby serves the web client."""

from __future__ import annotations

from tradearena.launcher.up import lobby_origins


def test_loopback_lobby_under_both_loopback_names() -> None:
    assert lobby_origins("127.0.0.1", 8080, []) == (
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    )


def test_a_lan_address_and_the_lobbys_extra_origins() -> None:
    extra = ["https://play.example.com"]
    assert lobby_origins("192.168.1.5", 9000, extra) == (
        "http://192.168.1.5:9000",
        "https://play.example.com",
    )


def test_every_address_is_no_origin_of_its_own() -> None:
    assert lobby_origins("0.0.0.0", 8080, []) == ("http://127.0.0.1:8080", "http://localhost:8080")
