"""Price sources for match servers: Binance archives, synthetic prices (pure readers/generators)."""
