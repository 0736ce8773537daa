"""match_operator."""
