"""The worker runtime: pools and the fetch / ack / heartbeat loops."""
