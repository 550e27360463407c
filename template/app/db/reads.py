"""Statements run each on its own: the Reader, which runs a request's reads, the Writer, which
runs a write that is one statement, and the plans that let a plain SELECT, or an INSERT, UPDATE
or DELETE with RETURNING, built once run on the driver itself."""

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any
from weakref import WeakSet

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Enum,
    Executable,
    FrozenResult,
    Integer,
    Row,
    SelectBase,
    String,
    Time,
    UpdateBase,
    Uuid,
)
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

from app.db import driver, pgbouncer
from app.db.errors import is_stale_plan

# Where a Reader takes a connection for each statement (ReplicaRouter.connect, or the test's),
# and, for a planned statement, a pooled connection as the pool holds it (ReplicaRouter.pooled).
Connections = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
PooledConnections = Callable[[], AbstractAsyncContextManager[PoolProxiedConnection]]


def refuse_to_write_statement(connection: object, statement: object, *_: object) -> None:
    """Raises for an INSERT, UPDATE or DELETE (also a `before_execute` listener)."""
    if isinstance(statement, UpdateBase):
        raise RuntimeError("a read connection cannot write: use SessionDep for handlers that write")


class Reader:
    """Runs a request's read statements, each on a pooled connection taken for that statement
    only (as asyncpg's `pool.fetch` does): reads run on their own anyway, so nothing is lost,
    and no connection waits idle while the handler builds its response.

    Each statement runs on its own, outside any transaction: no BEGIN and no COMMIT round trip.
    A SELECT built once (at import) and of plain columns runs on the driver itself from its
    third run (see `Plans`): compiled once, no SQLAlchemy cursor or execution context, and,
    given `pooled` connections, no SQLAlchemy Connection either: the pool's own connection, as
    `AsyncEngine.raw_connection()` hands it out. Its rows are SQLAlchemy `Row`s with the keys
    and values SQLAlchemy gives; an error is the driver's own exception (with its `sqlstate`),
    which app.api.errors answers as it answers SQLAlchemy's. Anything else runs through
    SQLAlchemy, in autocommit. With `direct` False (behind PgBouncer) every statement runs
    through SQLAlchemy, in a transaction. On a connection already in a transaction (a test's),
    a statement runs in it."""

    writes = False  # an INSERT, UPDATE or DELETE is refused (see Writer)

    def __init__(
        self,
        connections: Connections,
        *,
        pooled: PooledConnections | None = None,
        direct: bool = True,
        plans: "Plans | None" = None,
    ) -> None:
        self._connections = connections
        self._pooled = pooled
        self._direct = direct
        self._plans = plans or PLANS

    async def all(self, statement: Executable, /, **parameters: Any) -> Sequence[Row[Any]]:
        if not self.writes:
            refuse_to_write_statement(None, statement)
        plan = self._plans.get(statement) if self._direct else None
        if plan is not None and self._pooled is not None:
            async with self._pooled() as pooled:
                discard = partial(discard_pooled, pooled)
                return await plan.run(pooled.driver_connection, parameters, discard=discard)
        async with self._connections() as connection:
            if plan is not None:
                raw = (await connection.get_raw_connection()).driver_connection
                return await plan.run(raw, parameters, discard=connection.invalidate)
            return await self._through_sqlalchemy(connection, statement, parameters)

    async def first(self, statement: Executable, /, **parameters: Any) -> Row[Any] | None:
        rows = await self.all(statement, **parameters)
        return rows[0] if rows else None

    async def _through_sqlalchemy(
        self, connection: AsyncConnection, statement: Executable, parameters: dict[str, Any]
    ) -> Sequence[Row[Any]]:
        began = not connection.in_transaction()
        if self._direct and began:
            await connection.execution_options(isolation_level="AUTOCOMMIT")  # reset on return
        result = await connection.execute(statement, parameters)
        if not self._direct:
            rows = result.all()
            if self.writes and began:  # behind PgBouncer: a transaction of its own, committed
                await connection.commit()
            return rows
        return self._plans.learn(statement, connection.dialect, result)


class Writer(Reader):
    """Runs a write that is one statement (an INSERT, UPDATE or DELETE, with RETURNING to get
    the row back) on its own, as the Reader runs reads, on the primary: PostgreSQL makes a
    statement sent outside a transaction a transaction of its own, so the row is stored once
    the statement returns, and nothing is if it fails. That is the unit of work of one
    statement, without the BEGIN and COMMIT round trips and the session's bookkeeping. Writes
    that must be stored together, or that depend on what the request reads first, take the
    session's unit of work (SessionDep)."""

    writes = True


# Types whose values the drivers return as SQLAlchemy does, with no conversion (Enum is a String
# that converts; Numeric and Float convert depending on the column's type in the database).
PLAIN_TYPES = (Integer, String, Boolean, DateTime, Date, Time, Uuid)


def plain(type_: Any, dialect: Dialect) -> bool:
    return (
        isinstance(type_, PLAIN_TYPES)
        and not isinstance(type_, Enum)
        and type_.dialect_impl(dialect).result_processor(dialect, None) is None
    )


@dataclass(frozen=True)
class Plan:
    """A statement that returns rows, compiled once for the driver by SQLAlchemy's public API:
    its SQL (`Compiled.string`), its parameters in the driver's order (`construct_params()`,
    `positiontup`), and the shape of its rows: an empty `FrozenResult` of a run through
    SQLAlchemy, which gives the driver's rows back as SQLAlchemy `Row`s."""

    compiled: SQLCompiler
    shape: FrozenResult[Any]

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect, shape: FrozenResult[Any]) -> "Plan | None":
        """The plan of a SELECT, or an INSERT, UPDATE or DELETE with RETURNING, whose
        parameters and columns need nothing from SQLAlchemy at run time beyond what is compiled
        here; None for any other statement (SQLAlchemy runs it)."""
        if not isinstance(statement, SelectBase | UpdateBase):
            return None
        compiled = statement.compile(dialect=dialect)
        columns = statement.exported_columns  # the selected or returned columns
        if (
            not isinstance(compiled, SQLCompiler)
            or not columns
            or len(set(columns.keys())) != len(columns)
        ):
            return None
        binds = set(compiled.binds.values())
        if any(
            bind.expanding  # IN lists and the like: the SQL changes per execution
            or bind.literal_execute
            or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None
            for bind in binds
        ) or not all(plain(column.type, dialect) for column in columns):
            return None
        return cls(compiled, shape)

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """What the driver is sent: values by position (asyncpg) or by name (psycopg)."""
        if not self.compiled.positional:
            return self.compiled.construct_params(dict(values))
        named = self.compiled.construct_params(dict(values), escape_names=False)
        return [named[name] for name in self.compiled.positiontup or ()]

    async def run(
        self, connection: Any, values: Mapping[str, Any], *, discard: Callable[[], Awaitable[None]]
    ) -> Sequence[Row[Any]]:
        """The rows, read on the driver's `connection`. One that an error or a cancellation
        left unusable is discarded (`discard`): it never serves again."""
        sent = self.parameters(values)
        try:
            records = await driver.fetch(connection, self.compiled.string, sent)
        except BaseException as error:
            # A stale plan (a column's type changed) fails every run on this connection.
            if (
                not isinstance(error, Exception)
                or isinstance(error, driver.UNUSABLE)
                or driver.has_hung_up(connection)
                or is_stale_plan(error)
            ):
                await discard()
            if isinstance(error, Exception):  # direct reads run only without DB_PGBOUNCER
                pgbouncer.missing_setting_hint(error)
            raise
        return self.shape.with_new_rows(records)().all()


async def discard_pooled(pooled: PoolProxiedConnection) -> None:
    """Close the driver's connection now, and have the pool replace it when its slot is next
    taken. (Invalidating it outright would close it through SQLAlchemy, which with psycopg
    awaits inside SQLAlchemy's greenlet, and a pooled connection is used outside it.)"""
    await driver.close(pooled.driver_connection)
    pooled.invalidate(soft=True)


class Plans:
    """The plans of the statements run most recently, at most `size` of them, as SQLAlchemy's
    compiled cache keeps at most 500 statements: a plan keeps its statement alive. A statement
    is planned at its second run and runs on the driver from its third; one built at import is
    planned once. Its first run is remembered only while the statement lives: one built per
    request (a sorted list, a write with its values) is run once and gone, so it never takes a
    plan's place, and SQLAlchemy's own cache serves it."""

    UNPLANNED = object()

    def __init__(self, size: int = 500) -> None:
        self.size = size
        self._entries: OrderedDict[Executable, object] = OrderedDict()
        self._seen_once: WeakSet[Executable] = WeakSet()

    def get(self, statement: Executable) -> Plan | None:
        entry = self._entries.get(statement)
        if isinstance(entry, Plan):
            self._entries.move_to_end(statement)
            return entry
        return None

    def learn(
        self, statement: Executable, dialect: Dialect, result: Result[Any]
    ) -> Sequence[Row[Any]]:
        """The rows of a run through SQLAlchemy; the statement is planned at its second."""
        if statement in self._entries:  # planned before, and unfit for the driver (Plan.of)
            return result.all()
        if statement not in self._seen_once:
            self._seen_once.add(statement)
            return result.all()
        self._seen_once.discard(statement)
        frozen = result.freeze()
        plan = Plan.of(statement, dialect, frozen.with_new_rows([]))
        self._remember(statement, plan or self.UNPLANNED)
        return frozen().all()

    def _remember(self, statement: Executable, entry: object) -> None:
        self._entries[statement] = entry
        self._entries.move_to_end(statement)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


PLANS = Plans()
