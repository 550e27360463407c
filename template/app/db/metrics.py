"""The pool as metrics: its size, the connections in use and those opened, counted from the
pool's own events; and the requests waiting for a connection (app.db.session.ConnectionQueue)."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.metrics import metrics

# Told of each wait once it ends: the engine's name, and when it began and ended (time.time_ns()).
# app/telemetry.py records it on the request's span.
wait_observers: list[Callable[[str, int, int], None]] = []


def observe_pool(engine: AsyncEngine, name: str) -> None:
    """Count `engine`'s connections under the label `name` (primary, replica). Call it after
    every other checkout listener is added: one that refuses a connection (a dead one) makes
    the pool try another, and only the checkout that succeeds is counted."""
    known = metrics()
    if isinstance(engine.pool, QueuePool):  # not NullPool: it holds none
        known.pool_size.labels(name).set(engine.pool.size())
    in_use = known.pool_in_use.labels(name)
    opened = known.connections_opened.labels(name)

    def checked_out(*_: Any) -> None:
        in_use.inc()

    def checked_in(*_: Any) -> None:
        in_use.dec()

    def connected(*_: Any) -> None:
        opened.inc()

    event.listen(engine.sync_engine, "checkout", checked_out)
    event.listen(engine.sync_engine, "checkin", checked_in)
    event.listen(engine.sync_engine, "connect", connected)


@contextmanager
def waiting_for_connection(engine: str) -> Iterator[None]:
    """A request waits for a free connection of `engine` (primary, replica) while the block
    runs: counted among those waiting, and its wait timed (a wait that timed out too)."""
    known = metrics()
    waiting = known.connection_waiting.labels(engine)
    waiting.inc()
    started = time.time_ns()
    try:
        yield
    finally:
        ended = time.time_ns()
        waiting.dec()
        known.connection_wait.labels(engine).observe((ended - started) / 1e9)
        for observer in wait_observers:
            observer(engine, started, ended)
