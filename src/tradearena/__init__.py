"""tradearena."""
