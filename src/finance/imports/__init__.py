"""Bank statements in: parsing, duplicate detection, batches and undo."""
