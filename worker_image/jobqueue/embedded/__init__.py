"""Embedded servers for running jobqueue on a laptop and in tests (never used in production)."""
