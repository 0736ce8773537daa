"""The collector policy of a match-server process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from matchserver import heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """This test process must get its objects back into normal collection afterwards."""
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.me = self


def test_freeze_hides_what_is_alive_from_collections(unfrozen: None) -> None:
    records = [Node() for _ in range(1000)]
    hidden = heap.freeze()
    assert hidden >= 1000
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(r) in tracked for r in records)
    later = Node()
    assert id(later) in {id(o) for o in gc.get_objects()}


def test_pause_watch_times_every_collection_while_installed() -> None:
    seen: list[tuple[int, float]] = []
    with heap.PauseWatch(lambda gen, s: seen.append((gen, s))):
        gc.collect()
        gc.collect(0)
    assert [gen for gen, _ in seen][-2:] == [2, 0]
    assert all(s >= 0 for _, s in seen)
    observed = len(seen)
    gc.collect()
    assert len(seen) == observed  # removed on exit: nothing more observed
