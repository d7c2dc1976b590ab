"""The model layer: one interface over every provider, plus middleware that wraps it."""
