"""Benchmarks of the whole engine against the limits of its parts (`router bench`)."""
