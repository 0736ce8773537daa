"""Every Lua script of the product declares at least one key: a Redis Cluster client
routes a script by its first key (a script with none goes to any node, where the keys
it builds are not), and Redis 7 refuses a script that reaches another slot."""

from __future__ import annotations

import importlib
import re

import pytest

from matchserver.durability import LuaScript

SCRIPT_MODULES = [
    "lobby.matchmaking.queues",
    "lobby.matchmaking.parties",
    "lobby.http.ratelimit",
    "lobby.results.deadletter",
    "matchserver.relay.lease",
    "matchserver.store",
    "tradearena.orchestration.allocation",
    "tradearena.orchestration.phasewatch",
]


def _scripts(module_name: str) -> dict[str, str]:
    """Script sources: plain strings, or `LuaScript`s (the match server's EVALSHA scripts)."""
    module = importlib.import_module(module_name)
    found: dict[str, str] = {}
    for name, value in vars(module).items():
        source = value.source if isinstance(value, LuaScript) else value
        if isinstance(source, str) and "redis.call(" in source:
            found[name] = source
    return found


@pytest.mark.parametrize("module_name", SCRIPT_MODULES)
def test_every_script_uses_declared_keys(module_name: str) -> None:
    scripts = _scripts(module_name)
    assert scripts, f"{module_name} has no Lua script any more: update SCRIPT_MODULES"
    for name, body in scripts.items():
        assert "KEYS[1]" in body or "ipairs(KEYS)" in body, f"{module_name}.{name}"


@pytest.mark.parametrize("module_name", SCRIPT_MODULES)
def test_keys_a_script_builds_come_from_the_one_tagged_prefix(module_name: str) -> None:
    """Where a script builds a key name (the queue scripts: a mode's tickets, a player's
    modes), it builds it from ARGV[1], the `{q}` prefix, never from a literal."""
    for name, body in _scripts(module_name).items():
        for call in re.findall(r"redis\.call\('[A-Z]+', ([^,)]+)", body):
            key = call.strip()
            assert key.startswith(("KEYS[", "p ..", "pk", "akey", "unpack(args")), (
                f"{module_name}.{name}: {key}"
            )
