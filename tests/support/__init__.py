"""Shared test infrastructure (importable as `support` via pytest's pythonpath)."""
