"""Rolecall's test suite."""
