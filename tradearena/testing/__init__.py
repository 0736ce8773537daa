"""Shared test infrastructure (importable as `tradearena.testing` via pytest's pythonpath)."""
