"""Chip families: spec.toml data plus each family's hooks (imported as neurocomp.targets.<name>)."""
