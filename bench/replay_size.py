"""Replay document of one match: its size (compact JSON, gzipped) and the time to build it.

    .venv/bin/python bench/replay_size.py                   # 10 players, 30 minutes
    .venv/bin/python bench/replay_size.py --json
    .venv/bin/python bench/replay_size.py --players 2 --format blitz

The match is played by the engine with `matchserver.simulate` (as bench/archive_size.py:
a feed price every `step-ms`, scripted players), then replayed by the lobby's pure
replay view (`lobby.results.replay_view.replay`: the engine's verification, then the
frames and the official candles), and the document encoded as the API serves it
(compact JSON; gzip level 6 when the client accepts it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import time
import uuid
from typing import Any

from lobby.results import replay_view
from matchserver.simulate import SimulationSpec, simulate
from tradearena.modes import default_catalogue


def compact(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


def measure(players: int, fmt: str, step_ms: int, seed: int) -> dict[str, Any]:
    ids = tuple(str(uuid.UUID(int=seed * 1000 + i + 1)) for i in range(players))
    record = simulate(
        default_catalogue(),
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
    t0 = time.perf_counter()
    out = replay_view.replay(record)
    replay_s = time.perf_counter() - t0
    assert out.verification.ok, out.verification.differences
    doc = {"frames": out.frames, "candles": out.candles, "players": out.players}
    body = json.dumps(doc, separators=(",", ":")).encode()
    t0 = time.perf_counter()
    packed = gzip.compress(body, 6)
    gzip_s = time.perf_counter() - t0
    folded = replay_view.fold(out.frames, len(out.players))
    return {
        "players": players,
        "format": fmt,
        "minutes": default_catalogue().duration_ms(fmt) / 60_000,
        "log_entries": len(record.entries),
        "frames": len(out.frames),
        "fill_frames": sum(1 for f in out.frames if "f" in f),
        "candles": len(out.candles),
        "frames_bytes": compact(out.frames),
        "candles_bytes": compact(out.candles),
        "document_bytes": len(body),
        "gzip_bytes": len(packed),
        "every_key_every_frame_bytes": compact(folded),
        "replay_s": round(replay_s, 2),
        "gzip_s": round(gzip_s, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--format", default="standard", help="a catalogue format (30 min)")
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
        f"{res['players']} players, {res['minutes']:.0f} min: {res['log_entries']} log entries, "
        f"{res['frames']} frames ({res['fill_frames']} at fills), {res['candles']} candles"
    )
    print(
        f"document {res['document_bytes']:,} bytes (frames {res['frames_bytes']:,}, candles "
        f"{res['candles_bytes']:,}), gzip {res['gzip_bytes']:,} bytes; every key in every "
        f"frame would be {res['every_key_every_frame_bytes']:,} bytes"
    )
    print(f"replay (verify + frames + candles) {res['replay_s']} s, gzip {res['gzip_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
