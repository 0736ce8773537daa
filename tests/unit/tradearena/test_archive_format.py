"""The match archive's format: the replay file, compressed, checked against the result."""

from __future__ import annotations

import inspect

import pytest

from lobby.results.archive.retention import expiring_keys, expiry_s
from matchserver.engine.log import MatchRecord, digest
from matchserver.engine.replay import verify
from matchserver.simulate import SimulationSpec, simulate
from tradearena.contracts import archive, keys
from tradearena.modes import default_catalogue


@pytest.fixture(scope="module")
def record() -> MatchRecord:
    return simulate(default_catalogue(), SimulationSpec(players=4, seed=5, match_id="arc-1"))


def _build(record: MatchRecord, codec: archive.Codec, **over: object) -> archive.Archive:
    assert record.result is not None
    args: dict[str, object] = {
        "log_entries": len(record.entries),
        "expected_digest": record.result["log_digest"],
        "codec": codec,
    }
    args.update(over)
    return archive.build(
        record.header["match_id"],
        record.header,
        [e.to_wire() for e in record.entries],
        record.result,
        **args,  # type: ignore[arg-type]
    )


def test_the_digest_is_the_engines(record: MatchRecord) -> None:
    assert archive.log_digest(e.to_wire() for e in record.entries) == digest(record.entries)


@pytest.mark.parametrize("codec", list(archive.Codec))
def test_an_archive_decodes_to_the_replay_file_and_verifies(
    record: MatchRecord, codec: archive.Codec
) -> None:
    built = _build(record, codec)
    assert built.format == archive.ARCHIVE_FORMAT and built.codec is codec
    assert built.compressed_bytes < built.raw_bytes / 4
    lines = archive.decode(built.data, str(codec), built.format)
    assert lines == list(record.lines())
    assert built.raw_bytes == sum(len(line) + 1 for line in lines)
    back = MatchRecord.parse(lines)
    assert back == record
    assert verify(back).ok


def test_only_the_entries_the_result_covers_are_archived(record: MatchRecord) -> None:
    assert record.result is not None
    n = len(record.entries)
    extra = [*(e.to_wire() for e in record.entries), {"seq": n + 1, "at": 1, "kind": "connect"}]
    built = archive.build(
        "arc-1",
        record.header,
        extra,
        record.result,
        log_entries=n,
        expected_digest=record.result["log_digest"],
    )
    assert built.log_entries == n
    assert MatchRecord.parse(archive.decode(built.data, built.codec, built.format)) == record


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"expected_digest": "0" * 64}, "digest_mismatch"),
        ({"log_entries": 10**6}, "short_log"),
    ],
)
def test_a_log_that_disagrees_with_the_stored_result_is_refused(
    record: MatchRecord, over: dict[str, object], code: str
) -> None:
    with pytest.raises(archive.ArchiveError) as err:
        _build(record, archive.DEFAULT_CODEC, **over)
    assert err.value.code == code


def test_a_tampered_entry_changes_the_digest(record: MatchRecord) -> None:
    assert record.result is not None
    entries = [e.to_wire() for e in record.entries]
    entries[3] = {**entries[3], "at": entries[3]["at"] + 1}
    with pytest.raises(archive.ArchiveError) as err:
        archive.build(
            "arc-1",
            record.header,
            entries,
            record.result,
            log_entries=len(entries),
            expected_digest=record.result["log_digest"],
        )
    assert err.value.code == "digest_mismatch"


def test_another_matchs_header_or_engine_result_is_refused(record: MatchRecord) -> None:
    with pytest.raises(archive.ArchiveError) as err:
        archive.build(
            "arc-2", record.header, [], {}, log_entries=0, expected_digest=archive.log_digest([])
        )
    assert err.value.code == "wrong_match"
    assert record.result is not None
    with pytest.raises(archive.ArchiveError) as err:
        archive.build(
            "arc-1",
            record.header,
            [],
            {**record.result, "log_digest": "x"},
            log_entries=0,
            expected_digest=archive.log_digest([]),
        )
    assert err.value.code == "result_mismatch"


@pytest.mark.parametrize(
    ("data", "codec", "fmt", "code"),
    [
        (b"not compressed", "lzma", 1, "corrupt"),
        (b"not compressed", "zlib", 1, "corrupt"),
        (b"", "brotli", 1, "unknown_codec"),
        (b"", "lzma", 2, "unknown_format"),
    ],
)
def test_an_unreadable_archive_says_why(data: bytes, codec: str, fmt: int, code: str) -> None:
    with pytest.raises(archive.ArchiveError) as err:
        archive.decode(data, codec, fmt)
    assert err.value.code == code


def test_every_key_of_a_match_expires_and_no_shared_key_does() -> None:
    chosen = set(expiring_keys("m-7"))
    per_match = {
        fn("m-7")
        for name, fn in inspect.getmembers(keys, inspect.isfunction)
        if list(inspect.signature(fn).parameters) == ["match_id"] and name != "match_keys"
    }
    assert per_match, "keys.py defines per-match keys"
    assert chosen == per_match
    assert all("m-7" in key for key in chosen)
    shared = {keys.RESULTS_STREAM, keys.RESULTS_DEAD_LETTER, keys.SOCKETIO_CHANNEL}
    assert not chosen & shared
    assert expiring_keys("m-8") != expiring_keys("m-7")


@pytest.mark.parametrize(("grace", "ttl"), [(3600, 3600), (1, 1), (0, 1)])
def test_the_expiry_is_the_grace_and_never_zero(grace: int, ttl: int) -> None:
    assert expiry_s(grace) == ttl
