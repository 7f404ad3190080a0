"""The durable record in PostgreSQL: migrations, the recorder, queries, analytics and retention.

Redis is the live state; this package keeps what outlives it. Nothing here runs at import time: entry
points build a pool with :func:`jobqueue.record.db.open_pool` and pass it down.
"""
