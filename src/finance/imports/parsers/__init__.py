"""Statement parsers: pure functions from a file's bytes to normalized lines."""
