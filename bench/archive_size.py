"""Archive size of one match: the replay file raw and compressed by each codec.

    .venv/bin/python bench/archive_size.py                  # 10 players, 30 minutes
    .venv/bin/python bench/archive_size.py --json
    .venv/bin/python bench/archive_size.py --players 20 --format marathon --step-ms 1000

The match is played by the engine with `matchserver.simulate` (scripted players over
synthetic prices, user ids as UUIDs like real players): every `step-ms` one feed
price enters the log (250 ms: the relay's synthetic rate) and every player decides
whether to act (open with stops, partial close, abilities, Peek; the engine's rate
limit and trade cooldown apply), with random disconnects and reconnects. The
archive is built by the same pure code the results worker runs
(`tradearena.contracts.archive.build`) and checked against the match's digest.
Codecs: the standard library's zlib (level 9) and lzma (preset 6), and zstandard
(level 19) when that package is installed (it is not a dependency).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import uuid
from collections import Counter
from typing import Any

from matchserver.simulate import SimulationSpec, simulate
from tradearena.contracts.archive import Codec, build
from tradearena.modes import default_catalogue


def measure(players: int, fmt: str, step_ms: int, seed: int) -> dict[str, Any]:
    catalogue = default_catalogue()
    ids = tuple(str(uuid.UUID(int=seed * 1000 + i + 1)) for i in range(players))
    t0 = time.perf_counter()
    record = simulate(
        catalogue,
        SimulationSpec(
            mode="standard",
            format=fmt,
            players=players,
            seed=seed,
            step_ms=step_ms,
            match_id=f"bench-{seed}",
            player_ids=ids,
        ),
    )
    played_s = time.perf_counter() - t0
    assert record.result is not None
    entries = [e.to_wire() for e in record.entries]
    kinds = Counter(e["kind"] for e in entries)
    minutes = catalogue.duration_ms(fmt) / 60_000
    out: dict[str, Any] = {
        "players": players,
        "format": fmt,
        "minutes": minutes,
        "step_ms": step_ms,
        "log_entries": len(entries),
        "entries_by_kind": dict(sorted(kinds.items())),
        "actions_per_player_per_s": round(kinds["action"] / players / (minutes * 60), 3),
        "simulate_s": round(played_s, 2),
        "codecs": {},
    }
    for codec in Codec:
        t0 = time.perf_counter()
        archive = build(
            record.header["match_id"],
            record.header,
            entries,
            record.result,
            log_entries=len(entries),
            expected_digest=record.result["log_digest"],
            codec=codec,
        )
        out["raw_bytes"] = archive.raw_bytes
        out["codecs"][str(codec)] = {
            "bytes": archive.compressed_bytes,
            "ratio": round(archive.raw_bytes / archive.compressed_bytes, 1),
            "build_s": round(time.perf_counter() - t0, 2),
        }
    try:
        import zstandard
    except ImportError:
        return out
    # The same bytes as the archive's: sorted, compact JSON lines.
    text = "".join(line + "\n" for line in record.lines()).encode()
    t0 = time.perf_counter()
    packed = zstandard.ZstdCompressor(level=19).compress(text)
    out["codecs"]["zstd-19 (not a dependency)"] = {
        "bytes": len(packed),
        "ratio": round(len(text) / len(packed), 1),
        "build_s": round(time.perf_counter() - t0, 2),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument(
        "--format", default="standard", help="a catalogue format (standard: 30 min)"
    )
    parser.add_argument("--step-ms", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    res = measure(args.players, args.format, args.step_ms, args.seed)
    res["machine"] = f"{platform.machine()} {platform.python_version()}"
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(
        f"{res['players']} players, {res['minutes']:.0f} min, a price every {res['step_ms']} ms: "
        f"{res['log_entries']} log entries {res['entries_by_kind']}, "
        f"{res['actions_per_player_per_s']} actions/s per player"
    )
    print(f"raw (replay file): {res['raw_bytes']:>11,} bytes")
    for name, row in res["codecs"].items():
        print(f"{name:<28} {row['bytes']:>11,} bytes  x{row['ratio']:<5} in {row['build_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
