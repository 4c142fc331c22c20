"""Ledgers (sets of books), their members and roles, and the audit log."""
