"""Double-entry transactions and their postings."""
