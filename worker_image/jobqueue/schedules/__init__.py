"""Cron schedules: the pure model and cron math, and the registry over the broker."""
