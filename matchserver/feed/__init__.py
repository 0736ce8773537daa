"""Price sources for match servers: Binance archives, synthetic prices (pure readers/generators)."""

from .archive import (
    Kline,
    PricePoint,
    Trade,
    kline_path,
    kline_prices,
    read_klines,
    read_trades,
    to_millis,
)

__all__ = [
    "Kline",
    "PricePoint",
    "Trade",
    "kline_path",
    "kline_prices",
    "read_klines",
    "read_trades",
    "to_millis",
]
