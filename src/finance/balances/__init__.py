"""Balances as of a date, account registers and balance assertions."""
