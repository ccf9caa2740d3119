"""Helpers for testing rsmi and code built on it (reference implementations)."""
