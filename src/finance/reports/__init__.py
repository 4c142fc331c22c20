"""Financial reports computed in SQL."""
