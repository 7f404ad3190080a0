"""The broker: every Redis round trip of jobqueue (scripts, their typed wrappers, the clients)."""
