"""Why read sessions stay in a transaction behind PgBouncer (DB_PGBOUNCER=true).

    python3 -m uv run --with asyncpg --with psycopg python -m harness.pgbouncer_reads

Debian's pgbouncer in transaction mode in front of the embedded server; 20 clients x 100
statements each, the way the drivers send them with DB_PGBOUNCER=true. asyncpg prepares a
statement (Parse/Describe/Sync) and then executes it (Bind/Execute/Sync): outside a transaction
PgBouncer may give the two halves to different server connections. psycopg without prepared
statements sends one Parse/Bind/Execute/Sync.
"""

import asyncio
import os
import pwd
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import psycopg

from harness.service import Postgres, free_port

CLIENTS = 20
STATEMENTS = 100


def start_pgbouncer(postgres: Postgres, root: Path, port: int) -> subprocess.Popen[bytes]:
    config = root / "pgbouncer.ini"
    config.write_text(
        f"[databases]\nbench = host={postgres.socket_dir} dbname=postgres user=postgres\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {root}/users.txt\npool_mode = transaction\n"
        f"default_pool_size = 4\nmax_client_conn = 200\nlogfile = {root}/pgbouncer.log\n"
    )
    (root / "users.txt").write_text('"postgres" ""\n')
    # PgBouncer refuses to run as root: it runs as the embedded server's system user.
    user = pwd.getpwnam(postgres.server.system_user or pwd.getpwuid(os.getuid()).pw_name)
    for path in (root, config, root / "users.txt"):
        os.chown(path, user.pw_uid, user.pw_gid)
    process = subprocess.Popen(
        ["/usr/sbin/pgbouncer", "-q", str(config)], user=user.pw_uid, group=user.pw_gid
    )
    time.sleep(1)
    return process


async def asyncpg_client(url: str, errors: list[str], *, in_transaction: bool) -> None:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    for number in range(STATEMENTS):
        try:
            name = f"__asyncpg_{uuid.uuid4()}__"  # as app.db.driver names them
            if in_transaction:
                async with connection.transaction():
                    statement = await connection.prepare("SELECT $1::int", name=name)
                    await statement.fetchrow(number)
            else:
                statement = await connection.prepare("SELECT $1::int", name=name)
                await statement.fetchrow(number)
        except asyncpg.PostgresError as error:
            errors.append(type(error).__name__)
    await connection.close()


async def psycopg_client(url: str, errors: list[str]) -> None:
    connection = await psycopg.AsyncConnection.connect(url, prepare_threshold=None, autocommit=True)
    for number in range(STATEMENTS):
        try:
            await (await connection.execute("SELECT %s::int", (number,))).fetchone()
        except psycopg.Error as error:
            errors.append(type(error).__name__)
    await connection.close()


async def compare(url: str) -> None:
    cases: dict[str, Callable[[list[str]], Awaitable[None]]] = {
        "asyncpg, autocommit": lambda e: asyncpg_client(url, e, in_transaction=False),
        "asyncpg, in a transaction": lambda e: asyncpg_client(url, e, in_transaction=True),
        "psycopg, autocommit": lambda e: psycopg_client(url, e),
    }
    for name, client in cases.items():
        errors: list[str] = []
        await asyncio.gather(*(client(errors) for _ in range(CLIENTS)))
        kinds = ", ".join(sorted(set(errors))) or "-"
        print(f"{name}: {len(errors)} of {CLIENTS * STATEMENTS} statements failed ({kinds})")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pgbouncer-reads-") as scratch:
        root = Path(scratch)
        postgres = Postgres(root)
        port = free_port()
        bouncer = start_pgbouncer(postgres, root, port)
        try:
            asyncio.run(compare(f"postgresql://postgres@127.0.0.1:{port}/bench"))
        finally:
            bouncer.terminate()
            bouncer.wait()
            postgres.close()


if __name__ == "__main__":
    main()
