"""Simulated contact centres: the embedded demo (and, later, the load simulator)."""
