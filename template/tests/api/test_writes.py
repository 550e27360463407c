"""A write of one statement is that statement alone, its own transaction: no BEGIN and no
COMMIT, no SELECT before or after it, no SAVEPOINT. SQLAlchemy runs its first two runs (in
autocommit), the driver the others (app.db.reads.Plans)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import driver
from tests.support import idle_in_transaction


def kind(sql: str) -> str:
    return sql.split(None, 1)[0].upper() + (" RETURNING" if "RETURNING" in sql else "")


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[str]]:
    """What is sent while the block runs, by SQLAlchemy or on the driver directly: each
    statement's kind, and COMMIT and SAVEPOINT as SQLAlchemy's events. (SQLAlchemy's own `begin`
    event is left out: it marks its bookkeeping, which in autocommit sends nothing.)"""
    sent: list[str] = []
    fetch = driver.fetch

    async def fetch_and_record(connection: Any, sql: str, parameters: Any) -> Any:
        sent.append(kind(sql))
        return await fetch(connection, sql, parameters)

    def statement(_: object, __: object, sql: str, *___: object) -> None:
        sent.append(kind(sql))

    listeners = {
        "before_cursor_execute": statement,
        "commit": lambda *_: sent.append("COMMIT"),
        "savepoint": lambda *_: sent.append("SAVEPOINT"),
    }
    for name, listener in listeners.items():
        event.listen(engine.sync_engine, name, listener)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(driver, "fetch", fetch_and_record)
            yield sent
    finally:
        for name, listener in listeners.items():
            event.remove(engine.sync_engine, name, listener)


async def test_a_write_is_one_statement_with_returning_on_every_run(
    committing_app: FastAPI,
) -> None:
    engine: AsyncEngine = committing_app.state.engine
    transport = ASGITransport(app=committing_app)
    creating: list[list[str]] = []
    replacing: list[list[str]] = []
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        for number in range(3):
            with statements_sent(engine) as sent:
                created = await client.post(
                    "/users", json={"email": f"{number}@example.com", "name": "A"}
                )
            creating.append(sent)
            assert created.status_code == 201
            with statements_sent(engine) as sent:
                replaced = await client.put(
                    f"/users/{created.json()['id']}",
                    json={"email": f"{number}.b@example.com", "name": "B"},
                )
            replacing.append(sent)
            assert replaced.status_code == 200

    assert creating == [["INSERT RETURNING"]] * 3
    assert replacing == [["UPDATE RETURNING"]] * 3


async def test_a_write_is_stored_when_answered_and_a_failed_one_leaves_nothing_open(
    committing_app: FastAPI,
) -> None:
    engine: AsyncEngine = committing_app.state.engine
    transport = ASGITransport(app=committing_app)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        created = [
            await client.post("/users", json={"email": "w@example.com", "name": "W"})
            for _ in range(4)  # the last ones on the driver directly, all but the first taken
        ]
    async with engine.connect() as connection:
        stored = await connection.scalar(text("SELECT count(*) FROM users"))

    assert [response.status_code for response in created] == [201, 409, 409, 409]
    assert stored == 1
    assert await idle_in_transaction(engine) == 0
