"""Settings of the durable record, read from ``JOBQUEUE_RECORD_*`` environment variables.

The database URL itself is ``JOBQUEUE_DATABASE_URL`` (``jobqueue.settings.Settings.database_url``), shared
with the API.
"""

from __future__ import annotations

from pydantic import Field

from jobqueue.settings import EnvFileSettings, SettingsConfigDict


class RecordSettings(EnvFileSettings):
    """Recorder, rollup and retention knobs. Build once per process and pass it down."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_RECORD_", extra="ignore")

    # Read once per stream that has no stored position: the migration from the recorders of releases
    # before 0006, which read through this consumer group (docs/record.md, "The read protocol").
    group: str = Field(
        description="consumer group of the recorders of older releases, read once per stream to migrate",
        default="jobqueue-recorder",
        min_length=1,
    )
    # Entries read per stream per round trip; one batch is one PostgreSQL transaction.
    batch_size: int = Field(
        description="entries read per stream per round trip; one batch is one PostgreSQL transaction",
        default=2000,
        gt=0,
        le=50_000,
    )
    # While the recorder is behind (a read came back full), each read asks for twice as many entries, up
    # to this: fewer, larger transactions per event when it matters, i.e. when catching up. A read that
    # is not full returns to batch_size.
    max_batch_size: int = Field(
        description="largest read while the recorder catches up (reads double from batch_size while full)",
        default=10_000,
        gt=0,
        le=50_000,
    )
    block_ms: int = Field(description="how long one read blocks waiting for new events", default=1000, ge=1)
    # After a partial batch, wait this long before reading again: fewer, larger transactions under load,
    # at the price of recording up to this much later.
    linger_ms: int = Field(
        description="after a partial batch, wait this long before reading again (fewer, larger transactions)",
        default=100,
        ge=0,
    )
    # The consumer-group protocol's claim of pending entries; there is no pending list since 0006. Kept
    # (and ignored) so that configurations written for older releases still load.
    claim_idle_seconds: float = Field(
        description="unused since the position protocol (0006); accepted so older configurations load",
        default=60.0,
        gt=0,
    )
    claim_interval_seconds: float = Field(
        description="unused since the position protocol (0006); accepted so older configurations load",
        default=15.0,
        gt=0,
    )
    discover_interval_seconds: float = Field(
        description="how often a recorder looks for new streams, rebalances, and takes over those of a "
        "recorder gone",
        default=5.0,
        gt=0,
    )
    retry_initial_seconds: float = Field(
        description="first pause after a failed write (doubles up to retry_max_seconds)", default=0.1, gt=0
    )
    retry_max_seconds: float = Field(description="longest pause between write retries", default=5.0, gt=0)
    workers_interval_seconds: float = Field(
        description="how often worker heartbeats are copied into the record", default=10.0, gt=0
    )
    rollup_interval_seconds: float = Field(
        description="how often metric aggregates are rolled up", default=60.0, gt=0
    )
    retention_interval_seconds: float = Field(
        description="how often old rows are pruned", default=3600.0, gt=0
    )
    pool_size: int = Field(description="PostgreSQL connections of the recorder", default=4, gt=0)
    # How long a write waits for a PostgreSQL connection before it counts as failed and is retried.
    pool_timeout_seconds: float = Field(
        description="how long a write waits for a connection before it counts as failed and is retried",
        default=3.0,
        gt=0,
    )
    # Retention: raw rows (tasks, events, dead letters, workers, schedule runs) and metric aggregates.
    raw_retention_days: float = Field(
        description="how long raw rows (tasks, events, dead letters, workers, schedule runs) are kept",
        default=7.0,
        gt=0,
    )
    aggregate_retention_days: float = Field(
        description="how long metric aggregates are kept", default=30.0, gt=0
    )
    prune_batch_size: int = Field(description="rows deleted per retention statement", default=5000, gt=0)
    # Added to the recorder process's niceness at start (os.nice): on a machine shared with workers, a
    # positive value lets the hot path have the CPU first; the recorder then catches up when it is idle.
    niceness: int = Field(
        description="added to the recorder process's niceness at start (0-19; jobqueue recorder only)",
        default=0,
        ge=0,
        le=19,
    )
