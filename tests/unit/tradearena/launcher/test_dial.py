"""How clients dial match servers: the host map and the command line's --resolve."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tradearena.launcher.dial import DialOptions, HostMapResolver, mapped_host, parse_hosts
from tradearena.testing.tls import ThrowawayCA

HOSTS = {"*.play.test": "127.0.0.1", "*.eu.play.test": "127.0.0.2", "lobby.test": "127.0.0.3"}


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("127-0-0-1.play.test", "127.0.0.1"),
        ("1-2-3-4.EU.play.test.", "127.0.0.2"),  # the longest suffix, any case, trailing dot
        ("lobby.test", "127.0.0.3"),
        ("play.test", None),  # a wildcard covers names under it only
        ("example.com", None),
    ],
)
def test_names_map_exactly_or_by_the_longest_wildcard(name: str, address: str | None) -> None:
    assert mapped_host(HOSTS, name) == address


def test_resolve_items_parse_and_bad_ones_are_refused() -> None:
    assert parse_hosts(["*.Play.test=127.0.0.1", "a.b = 10.0.0.1"]) == {
        "*.play.test": "127.0.0.1",
        "a.b": "10.0.0.1",
    }
    for bad in ("play.test", "=1.2.3.4", "a.b="):
        with pytest.raises(ValueError, match="NAME=ADDRESS"):
            parse_hosts([bad])


async def test_the_resolver_answers_mapped_names_and_keeps_the_name() -> None:
    resolver = HostMapResolver(HOSTS)
    try:
        (result, *_) = await resolver.resolve("7-7-7-7.play.test", 7001, socket.AF_INET)
        assert (result["host"], result["port"], result["hostname"]) == (
            "127.0.0.1",
            7001,
            "7-7-7-7.play.test",
        )
    finally:
        await resolver.close()


def test_a_ca_file_is_trusted_instead_of_the_system_store(tmp_path: Path) -> None:
    ca = ThrowawayCA.create(tmp_path)
    context = DialOptions(ca_file=ca.cert_file).ssl_context()
    subjects = [dict(x[0] for x in c["subject"]) for c in context.get_ca_certs()]
    assert subjects == [{"commonName": "TradeArena test CA"}]
    assert context.check_hostname
