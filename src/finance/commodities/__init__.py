"""Commodities: currencies, shares, anything countable, each with an exact precision."""
