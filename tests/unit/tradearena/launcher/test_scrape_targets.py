"""`up`'s file_sd targets: groups per component, atomic rewrite only on change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tradearena.launcher import scrape_targets as st


def test_scrape_address_reaches_any_address_on_loopback() -> None:
    assert st.scrape_address("0.0.0.0", 8080) == "127.0.0.1:8080"
    assert st.scrape_address("10.1.2.3", 9100) == "10.1.2.3:9100"
    assert st.scrape_address("::1", 9100) == "[::1]:9100"


def test_file_sd_groups_by_component_and_skips_empty_ones() -> None:
    groups = st.file_sd({st.LOBBY: ["127.0.0.1:8080"], st.MATCH_SERVER: ["b:2", "a:1"], "x": []})
    assert groups == [
        {"targets": ["127.0.0.1:8080"], "labels": {"component": "lobby"}},
        {"targets": ["a:1", "b:2"], "labels": {"component": "match-server"}},
    ]


def test_write_if_changed(tmp_path: Path) -> None:
    path = tmp_path / st.FILE_NAME
    groups = st.file_sd({st.LOBBY: ["127.0.0.1:8080"]})
    assert st.write_if_changed(path, groups)
    assert json.loads(path.read_text()) == groups
    assert not st.write_if_changed(path, groups)
    assert st.write_if_changed(path, st.file_sd({st.LOBBY: ["127.0.0.1:8081"]}))
    assert not list(tmp_path.glob("*.tmp"))


async def test_keep_targets_follows_the_match_servers(tmp_path: Path) -> None:
    path = tmp_path / st.FILE_NAME
    servers = ["127.0.0.1:9001"]
    stop = asyncio.Event()
    task = asyncio.create_task(
        st.keep_targets(path, {st.LOBBY: ["127.0.0.1:8080"]}, lambda: list(servers), stop, 0.05)
    )

    async def targets_of(component: str, want: list[str]) -> None:
        async with asyncio.timeout(5):
            while True:
                if path.exists():
                    groups = {
                        g["labels"]["component"]: g["targets"] for g in json.loads(path.read_text())
                    }
                    if groups.get(component, []) == want:
                        return
                await asyncio.sleep(0.02)

    await targets_of(st.MATCH_SERVER, ["127.0.0.1:9001"])
    servers.append("127.0.0.1:9002")
    await targets_of(st.MATCH_SERVER, ["127.0.0.1:9001", "127.0.0.1:9002"])
    servers.clear()
    await targets_of(st.MATCH_SERVER, [])
    stop.set()
    await asyncio.wait_for(task, 5)
