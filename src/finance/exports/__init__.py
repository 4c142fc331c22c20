"""Ledgers out, in formats other tools read (Beancount, ledger, CSV, JSON)."""
