"""Where tests find the repository and the shared market data beside it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Real Binance klines, one CSV per UTC day: ../shared/data beside the repository.
KLINES_DIR = REPO.parent / "shared" / "data" / "binance-klines-1m"
