"""matchserver."""
