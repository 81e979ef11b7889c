"""The only layer that speaks SQL or Redis."""
