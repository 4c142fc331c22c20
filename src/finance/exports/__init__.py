"""Ledgers out, in formats other tools read."""
