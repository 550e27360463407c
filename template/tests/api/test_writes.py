"""A write is one transaction of one statement: BEGIN, the INSERT or UPDATE with RETURNING,
COMMIT; no SELECT before or after it, no SAVEPOINT."""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[str]]:
    """What the engine sends while the block runs: each statement's first word, and BEGIN and
    COMMIT as the transaction's events."""
    sent: list[str] = []

    def statement(_: object, __: object, sql: str, *___: object) -> None:
        sent.append(sql.split(None, 1)[0].upper() + (" RETURNING" if "RETURNING" in sql else ""))

    listeners = {
        "before_cursor_execute": statement,
        "begin": lambda *_: sent.append("BEGIN"),
        "commit": lambda *_: sent.append("COMMIT"),
        "savepoint": lambda *_: sent.append("SAVEPOINT"),
    }
    for name, listener in listeners.items():
        event.listen(engine.sync_engine, name, listener)
    try:
        yield sent
    finally:
        for name, listener in listeners.items():
            event.remove(engine.sync_engine, name, listener)


async def test_a_write_is_begin_one_statement_with_returning_and_commit(
    committing_app: FastAPI,
) -> None:
    engine: AsyncEngine = committing_app.state.engine
    transport = ASGITransport(app=committing_app)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        with statements_sent(engine) as creating:
            created = await client.post("/users", json={"email": "a@example.com", "name": "A"})
        with statements_sent(engine) as replacing:
            replaced = await client.put(
                f"/users/{created.json()['id']}", json={"email": "b@example.com", "name": "B"}
            )

    assert (created.status_code, replaced.status_code) == (201, 200)
    assert creating == ["BEGIN", "INSERT RETURNING", "COMMIT"]
    assert replacing == ["BEGIN", "UPDATE RETURNING", "COMMIT"]
