"""Market data the lobby serves: a symbol's candle history."""
