"""Which failures the cluster client sends again: a connection torn down under a command
(redis-py's writer gone before sending), and nothing else that looks like it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tradearena.redisconn import torn_connection


def _raised(fn: Callable[[], object]) -> AttributeError:
    with pytest.raises(AttributeError) as info:
        fn()
    return info.value


class _Connection:
    """What redis-py's asyncio connection holds once another task disconnected it."""

    _writer: object = None
    _reader: object = None

    def send(self) -> None:
        self._writer.writelines([b"PING"])  # type: ignore[attr-defined]

    def write(self) -> None:
        self._writer.write(b"PING")  # type: ignore[attr-defined]

    def read(self) -> None:
        self._reader.readline()  # type: ignore[attr-defined]


def test_a_writer_gone_under_a_command_is_a_torn_connection() -> None:
    conn = _Connection()
    assert torn_connection(_raised(conn.send))
    assert torn_connection(_raised(conn.write))


def test_other_attribute_errors_and_other_errors_are_not() -> None:
    conn = _Connection()
    assert not torn_connection(_raised(conn.read))  # the command may have been sent
    assert not torn_connection(_raised(lambda: b"x".writelines))  # type: ignore[attr-defined]
    assert not torn_connection(AttributeError("writelines"))
    assert not torn_connection(ValueError("writelines"))
