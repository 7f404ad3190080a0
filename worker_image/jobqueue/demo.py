"""Demo tasks loaded by ``make run`` / ``jobqueue up`` so a new user sees tasks flow."""

from __future__ import annotations

import random
import time

from jobqueue.app import App
from jobqueue.context import current_context

app = App()


@app.task(queue="default", max_retries=2, retry_base=0.5)
def add(x: float, y: float) -> float:
    """Add two numbers."""
    return x + y


@app.task(queue="default", timeout=30)
def resize_image(image_id: int, width: int = 640) -> dict[str, int]:
    """Pretend to resize an image, checking for cancellation as it goes."""
    ctx = current_context()
    for _ in range(5):
        if ctx.is_cancelled():
            ctx.logger.info("cancelled while resizing")
            return {"image_id": image_id, "width": 0}
        time.sleep(0.05)
    return {"image_id": image_id, "width": width}


@app.task(queue="default", max_retries=3, retry_base=0.5)
def flaky(probability: float = 0.3) -> str:
    """Fail now and then, to show retries and the dead letter queue."""
    if random.random() < probability:  # noqa: S311 - demo
        raise ConnectionError("the demo dependency is flaky")
    return "ok"
