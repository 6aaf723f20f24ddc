"""Benchmarks and quality comparisons against a naive retrieval pipeline."""
