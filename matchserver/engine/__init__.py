"""The pure match rules engine: no I/O, no clocks; time is an input."""
