"""A small user project: the tasks of a shop's back office.

Run it locally with the whole stack:   jobqueue up --app tasks:app
Run a worker until the queues are empty: jobqueue worker --app tasks:app --queues default,email --burst
"""

from __future__ import annotations

from jobqueue import App, TaskContext

# App() reads JOBQUEUE_* settings (JOBQUEUE_REDIS_URL, ...) and opens no connection until first used; the
# pytest plugin points it at a private Redis for each test.
app = App()


@app.task
def add(x: int, y: int) -> int:
    """Add two numbers (workflows pass a parent's result as the first argument)."""
    return x + y


@app.task(queue="email", bind=True, max_retries=3)
def send_receipt(ctx: TaskContext, order_id: int, outage_attempts: int = 0) -> str:
    """Send a receipt; the mail server is down for the first ``outage_attempts`` attempts."""
    if ctx.retries < outage_attempts:
        raise ConnectionError("mail server unavailable")
    return f"receipt for order {order_id} sent"


@app.task(queue="email", max_retries=0)
def reject_order(order_id: int) -> None:
    """Always fails: an order that cannot be processed ends FAILED (dead-lettered) at once."""
    raise ValueError(f"order {order_id} cannot be processed")
