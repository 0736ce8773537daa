"""The archive of a finished match: its replay file, compressed, checked against its result.

The results worker writes one archive per stored result to PostgreSQL
(`match_archive`, migration 0102) and `tradearena replay --database-url` reads it back.
Format 1 is the replay file itself (`tradearena replay LOG`): UTF-8 JSON lines, one
`header`, the log `entry` lines in order, one `result` (the engine's own summary,
which replay verifies against), each a compact JSON object with sorted keys. The
official prices the match used are in the log (its `price` entries), so the archive
alone reproduces the match. The bytes are compressed by `codec`.

Before anything is written, the log is checked against the stored result: it must
hold at least `log_entries` entries and the first `log_entries` of them must have the
result's `log_digest` (sha256 over each entry's compact JSON and a newline, as the
engine computes it); only those are archived. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ARCHIVE_FORMAT = 1


class Codec(StrEnum):
    ZLIB = "zlib"  # level 9
    LZMA = "lzma"  # xz container, preset 6 with a 2 MiB dictionary (see below)


# Preset 6's 8 MiB dictionary buys nothing on logs of a few MB and costs the worker
# ~12 MiB more memory while it compresses; decompression reads the size from the header.
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 2 << 20}]


DEFAULT_CODEC = Codec.LZMA  # smallest of the standard library's (docs/benchmarks.md)


class ArchiveError(ValueError):
    """The match cannot be archived (or an archive not read); `code` is a stable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Archive:
    match_id: str
    format: int
    codec: Codec
    data: bytes
    raw_bytes: int
    log_entries: int
    log_digest: str

    @property
    def compressed_bytes(self) -> int:
        return len(self.data)


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def log_digest(entries: Iterable[Mapping[str, Any]]) -> str:
    """The engine's log digest over entries in their wire form (`LogEntry.to_wire()`)."""
    h = hashlib.sha256()
    for entry in entries:
        h.update(_dumps(entry).encode())
        h.update(b"\n")
    return h.hexdigest()


def compress(raw: bytes, codec: Codec) -> bytes:
    if codec is Codec.ZLIB:
        return zlib.compress(raw, 9)
    return lzma.compress(raw, format=lzma.FORMAT_XZ, filters=_LZMA_FILTERS)


def decompress(data: bytes, codec: Codec) -> bytes:
    try:
        if codec is Codec.ZLIB:
            return zlib.decompress(data)
        return lzma.decompress(data)
    except (zlib.error, lzma.LZMAError) as exc:
        raise ArchiveError("corrupt", f"the archive does not decompress ({exc})") from None


def lines(
    header: Mapping[str, Any], entries: Iterable[Mapping[str, Any]], result: Mapping[str, Any]
) -> Iterable[str]:
    """The replay file's lines (without newlines)."""
    yield _dumps({"type": "header", **header})
    for entry in entries:
        yield _dumps({"type": "entry", **entry})
    yield _dumps({"type": "result", **result})


def build(
    match_id: str,
    header: Mapping[str, Any],
    entries: Sequence[Mapping[str, Any]],
    result: Mapping[str, Any],
    *,
    log_entries: int,
    expected_digest: str,
    codec: Codec = DEFAULT_CODEC,
) -> Archive:
    """The archive of a match whose stored result says (`log_entries`, `expected_digest`);
    ArchiveError unless header, log and engine result all agree with it."""
    if header.get("match_id") != match_id:
        raise ArchiveError("wrong_match", f"header is of match {header.get('match_id')!r}")
    if len(entries) < log_entries:
        raise ArchiveError(
            "short_log", f"the log has {len(entries)} entries, the result counts {log_entries}"
        )
    kept = entries[:log_entries]
    found = log_digest(kept)
    if found != expected_digest:
        raise ArchiveError(
            "digest_mismatch", f"log digest {found} is not the stored result's {expected_digest}"
        )
    if result.get("log_digest") != expected_digest:
        raise ArchiveError(
            "result_mismatch",
            f"the engine's result has log digest {result.get('log_digest')!r}, "
            f"the stored result {expected_digest}",
        )
    raw = "".join(line + "\n" for line in lines(header, kept, result)).encode()
    return Archive(
        match_id, ARCHIVE_FORMAT, codec, compress(raw, codec), len(raw), log_entries, found
    )


def decode(data: bytes, codec: str, fmt: int) -> list[str]:
    """The replay file's lines of a stored archive."""
    if fmt != ARCHIVE_FORMAT:
        raise ArchiveError("unknown_format", f"archive format {fmt!r} is not {ARCHIVE_FORMAT}")
    try:
        known = Codec(codec)
    except ValueError:
        raise ArchiveError("unknown_codec", f"unknown codec {codec!r}") from None
    try:
        return decompress(data, known).decode().splitlines()
    except UnicodeDecodeError as exc:
        raise ArchiveError("corrupt", f"the archive is not UTF-8 ({exc})") from None
