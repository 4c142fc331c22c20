"""Prices: what a unit of one commodity was worth in another on a date."""
