"""The `jobqueue` command line (entry point: jobqueue.cli.main.main:main)."""
