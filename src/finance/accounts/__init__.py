"""Hierarchical accounts named by their full path."""
