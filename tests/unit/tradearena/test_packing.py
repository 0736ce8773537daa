"""Packed allocation order: partly used servers, fullest nodes, never a full one."""

from __future__ import annotations

from tradearena.orchestration.packing import Candidate, choose, packed_order


def c(server: str, node: str, count: int, capacity: int = 4, **kw: bool) -> Candidate:
    return Candidate(server, node, capacity, count, **kw)


def test_a_partly_used_server_before_an_idle_one() -> None:
    assert choose([c("idle", "n1", 0), c("busy", "n2", 2)]) == c("busy", "n2", 2)


def test_the_fullest_node_among_partly_used_servers() -> None:
    servers = [c("a", "n1", 1), c("b", "n2", 1), c("b2", "n2", 3), c("x", "n1", 0)]
    order = [s.server_id for s in packed_order(servers)]
    assert order == ["b2", "b", "a", "x"]


def test_idle_servers_on_the_fullest_node_first() -> None:
    servers = [c("i1", "n1", 0), c("i2", "n2", 0), c("full", "n2", 4)]
    assert [s.server_id for s in packed_order(servers)] == ["i2", "i1"]


def test_full_draining_and_unready_servers_are_never_chosen() -> None:
    servers = [
        c("full", "n", 4),
        c("draining", "n", 1, draining=True),
        c("starting", "n", 0, ready=False),
    ]
    assert choose(servers) is None
    assert choose([]) is None


def test_capacity_one_servers_are_dedicated() -> None:
    servers = [c("s1", "n", 1, capacity=1), c("s2", "n", 0, capacity=1)]
    assert choose(servers) == c("s2", "n", 0, capacity=1)
