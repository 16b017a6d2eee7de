"""Placeholder replaced by the parser work in progress."""
